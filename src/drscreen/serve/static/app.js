// Shared helpers: the CSRF token, confirmations, widths and colours set from data attributes
// (the Content-Security-Policy forbids inline styles and scripts).
"use strict";

window.drscreen = {
  csrf() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  },
  async getJSON(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (!response.ok) throw new Error(`${url}: ${response.status}`);
    return response.json();
  },
};

document.addEventListener("DOMContentLoaded", () => {
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
  for (const bar of document.querySelectorAll("[data-width]")) {
    if (bar.classList.contains("bar")) bar.style.width = `${bar.dataset.width}%`;
  }
  for (const swatch of document.querySelectorAll(".swatch[data-color]")) {
    swatch.style.background = swatch.dataset.color;
  }
});
