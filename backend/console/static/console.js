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

// The inbox updates live: the server streams the re-rendered groups
// (Server-Sent Events fed by MessagingService.WatchInbox). Without
// JavaScript the page is still correct when reloaded.
(function () {
  var inbox = document.getElementById("inbox");
  if (!inbox || !window.EventSource) { return; }
  var live = document.getElementById("live");
  var es = new EventSource(inbox.dataset.events);
  es.addEventListener("ready", function () {
    inbox.dataset.live = "on";
    if (live) { live.textContent = "Live: new messages appear here without reloading."; }
  });
  es.addEventListener("inbox", function (ev) {
    // The server rendered (and escaped) this HTML with html/template.
    var tpl = document.createElement("template");
    tpl.innerHTML = ev.data;
    inbox.replaceChildren(tpl.content);
    inbox.dataset.updated = String(Date.now());
  });
  es.addEventListener("error", function () {
    inbox.dataset.live = "off";
    if (live) { live.textContent = "Reconnecting…"; }
  });
})();
