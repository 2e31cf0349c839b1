// Placeholder until the browser app (issue 8): shows who is logged in.
fetch('/api/v1/session', {credentials: 'same-origin'})
  .then((r) => r.ok ? r.json() : null)
  .then((s) => {
    document.getElementById('status').textContent =
        s ? `Logged in as ${s.user} (${s.role}).` : 'Not logged in.';
  });
