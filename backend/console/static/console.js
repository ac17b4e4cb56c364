// MTM pharmacist console: small progressive enhancement. Every page works
// without it.
"use strict";

// A form is submitted once: later clicks (a double-click on "Send") do
// nothing until the page changes. The server side is idempotent anyway
// (each reply form carries its own client message id).
document.addEventListener("submit", function (ev) {
  var form = ev.target;
  if (form.dataset.submitted === "1") {
    ev.preventDefault();
    return;
  }
  form.dataset.submitted = "1";
  form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
});
