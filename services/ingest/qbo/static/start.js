// The browser that starts the QuickBooks connect flow must be the one that finishes it:
// the connect endpoint sets a cookie on this origin, and the callback checks it.
document.getElementById("connect").addEventListener("submit", async (event) => {
  event.preventDefault();
  const message = document.getElementById("message");
  message.textContent = "";
  const key = document.getElementById("key").value.trim();
  try {
    const response = await fetch("/oauth/quickbooks/connect", {
      headers: { Authorization: `Bearer ${key}`, Accept: "application/json" },
      credentials: "same-origin",
    });
    const body = await response.json();
    if (!response.ok) {
      message.textContent = body.detail || "The connection could not be started.";
      return;
    }
    window.location.assign(body.authorize_url);
  } catch {
    message.textContent = "The service could not be reached. Try again in a moment.";
  }
});
