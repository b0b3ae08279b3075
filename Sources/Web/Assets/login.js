// The login page: posts the password, then goes to the dashboard.
"use strict";
document.getElementById("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = document.getElementById("login-error");
  error.textContent = "";
  const password = document.getElementById("password").value;
  try {
    const response = await fetch("/api/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ password }),
      credentials: "same-origin",
    });
    if (response.ok) {
      window.location.assign("/");
      return;
    }
    const body = await response.json().catch(() => ({}));
    error.textContent = body.error || `login failed (${response.status})`;
  } catch (e) {
    error.textContent = `the relay cannot be reached (${e})`;
  }
});
