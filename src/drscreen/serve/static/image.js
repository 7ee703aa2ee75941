// The result page: overlay toggles and opacity; while the photograph waits, poll until it is screened.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  for (const toggle of document.querySelectorAll("[data-toggle]")) {
    const layer = document.querySelector(`[data-layer="${toggle.dataset.toggle}"]`);
    if (!layer) continue;
    const apply = () => { layer.toggleAttribute("hidden", !toggle.checked); };
    toggle.addEventListener("change", apply);
    apply();
  }
  for (const slider of document.querySelectorAll("[data-opacity]")) {
    const layer = document.querySelector(`[data-layer="${slider.dataset.opacity}"]`);
    if (!layer) continue;
    const apply = () => { layer.style.opacity = String(slider.value / 100); };
    slider.addEventListener("input", apply);
    apply();
  }
  const pending = document.getElementById("pending");
  if (pending) {
    const check = async () => {
      try {
        const image = await window.drscreen.getJSON(`/api/images/${pending.dataset.imageId}`);
        if (image.status !== "queued") { window.location.reload(); return; }
      } catch (_) { /* the server may be restarting: keep trying */ }
      setTimeout(check, 1500);
    };
    setTimeout(check, 1500);
  }
});
