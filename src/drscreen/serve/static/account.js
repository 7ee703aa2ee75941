// The account page: create an API token through the API and show it once.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("token-form");
  const output = document.getElementById("token-output");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const response = await fetch("/api/tokens", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": window.drscreen.csrf() },
      body: JSON.stringify({ name: document.getElementById("token-name").value }),
    });
    const reply = await response.json();
    output.hidden = false;
    output.textContent = response.ok
      ? `Token "${reply.name}" (copy it now, it is not shown again): ${reply.token}`
      : `Could not create a token: ${JSON.stringify(reply.detail)}`;
  });
});
