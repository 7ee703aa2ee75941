// The upload page: drag and drop, one request per file with its own progress bar, then each
// file's job is polled until its result (or the reason it was rejected) is known.
"use strict";

const POLL_MS = 1000;
const PARALLEL_UPLOADS = 3;

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("upload-form");
  const input = document.getElementById("file-input");
  const zone = document.getElementById("dropzone");
  const button = document.getElementById("upload-button");
  const error = document.getElementById("form-error");
  const queueCard = document.getElementById("queue-card");
  const rows = document.querySelector("#queue tbody");
  let chosen = [];

  function choose(files) {
    chosen = Array.from(files);
    button.disabled = chosen.length === 0;
    button.textContent = chosen.length ? `Screen ${chosen.length} photograph${chosen.length === 1 ? "" : "s"}` : "Screen photographs";
    zone.classList.toggle("has-files", chosen.length > 0);
    zone.querySelector(".drop-title").textContent = chosen.length
      ? chosen.map((f) => f.name).slice(0, 4).join(", ") + (chosen.length > 4 ? ` and ${chosen.length - 4} more` : "")
      : "Drop fundus photographs here";
  }

  zone.addEventListener("click", () => input.click());
  zone.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); } });
  input.addEventListener("change", () => choose(input.files));
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (e) => { e.preventDefault(); zone.classList.add("dragging"); });
  }
  for (const name of ["dragleave", "drop"]) {
    zone.addEventListener(name, (e) => { e.preventDefault(); zone.classList.remove("dragging"); });
  }
  zone.addEventListener("drop", (e) => choose(e.dataTransfer.files));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const patient = document.getElementById("patient-id");
    error.hidden = true;
    if (!patient.value || !patient.checkValidity()) {
      error.textContent = "Enter a patient ID: letters, digits, '.', '_' or '-'.";
      error.hidden = false;
      patient.focus();
      return;
    }
    const meta = {
      patient_id: patient.value,
      laterality: form.querySelector('input[name="laterality"]:checked').value,
      visit: document.getElementById("visit").value,
    };
    const files = chosen;
    choose([]);
    input.value = "";
    queueCard.hidden = false;
    const tasks = files.map((file) => ({ file, row: addRow(file, meta) }));
    const workers = Array.from({ length: PARALLEL_UPLOADS }, async () => {
      while (tasks.length) {
        const task = tasks.shift();
        await upload(task.file, meta, task.row);
      }
    });
    await Promise.all(workers);
  });

  function addRow(file, meta) {
    const row = document.createElement("tr");
    row.className = "upload-row";
    const cells = [file.name, meta.patient_id, meta.laterality || "from image"];
    for (const text of cells) {
      const td = document.createElement("td");
      td.textContent = text;
      row.appendChild(td);
    }
    const progressCell = document.createElement("td");
    const progress = document.createElement("progress");
    progress.max = 100;
    progress.value = 0;
    progressCell.appendChild(progress);
    row.appendChild(progressCell);
    const status = document.createElement("td");
    status.className = "status";
    status.textContent = "waiting";
    row.appendChild(status);
    const link = document.createElement("td");
    row.appendChild(link);
    rows.prepend(row);
    return { row, progress, status, link };
  }

  function upload(file, meta, ui) {
    return new Promise((resolve) => {
      const body = new FormData();
      body.append("files", file, file.name);
      body.append("patient_id", meta.patient_id);
      body.append("laterality", meta.laterality);
      body.append("visit", meta.visit);
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/api/images");
      xhr.setRequestHeader("X-CSRF-Token", window.drscreen.csrf());
      xhr.setRequestHeader("Accept", "application/json");
      ui.status.textContent = "uploading";
      xhr.upload.addEventListener("progress", (e) => {
        if (e.lengthComputable) ui.progress.value = Math.round((100 * e.loaded) / e.total);
      });
      xhr.addEventListener("load", () => {
        ui.progress.value = 100;
        let reply = null;
        try { reply = JSON.parse(xhr.responseText); } catch (_) { reply = null; }
        const outcome = reply && reply.files ? reply.files[0] : null;
        if (outcome && outcome.accepted) {
          setStatus(ui, "queued", "queued for screening");
          poll(outcome.job_id, outcome.image_id, ui);
        } else if (outcome) {
          setStatus(ui, "rejected", `Rejected: ${outcome.reason}`);
        } else {
          const detail = reply && typeof reply.detail === "string" ? reply.detail : `the server answered ${xhr.status}`;
          setStatus(ui, "rejected", `Rejected: ${detail}`);
        }
        resolve();
      });
      xhr.addEventListener("error", () => { setStatus(ui, "rejected", "Upload failed: no connection to the server"); resolve(); });
      xhr.send(body);
    });
  }

  function setStatus(ui, kind, text) {
    ui.row.dataset.state = kind;
    ui.status.textContent = text;
    ui.status.className = `status status-${kind}`;
  }

  async function poll(jobId, imageId, ui) {
    try {
      const job = await window.drscreen.getJSON(`/api/jobs/${jobId}`);
      if (job.status === "queued" || job.status === "running") {
        setStatus(ui, "queued", job.status === "running" ? "screening…" : "queued for screening");
        setTimeout(() => poll(jobId, imageId, ui), POLL_MS);
        return;
      }
      const image = await window.drscreen.getJSON(`/api/images/${imageId}`);
      showOutcome(image, ui);
    } catch (_) {
      setTimeout(() => poll(jobId, imageId, ui), POLL_MS * 3);
    }
  }

  function showOutcome(image, ui) {
    if (image.status === "screened") {
      const grade = `DR ${image.dr_grade} · ${image.dr_name}`;
      setStatus(ui, image.referable ? "refer" : "screened", image.referable ? `${grade} · referable` : `${grade} · not referable`);
    } else if (image.status === "ungradable") {
      setStatus(ui, "ungradable", "Ungradable: retake the photograph or refer");
    } else {
      setStatus(ui, "rejected", `Rejected: ${image.error_message}`);
    }
    const a = document.createElement("a");
    a.href = `/images/${image.id}`;
    a.textContent = "View result";
    a.className = "result-link";
    ui.link.replaceChildren(a);
  }
});
