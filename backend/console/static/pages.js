// Patient pages: small enhancements. Every page works without them.
"use strict";

// "Print the hand-out" opens the browser's print dialog (the print style
// sheet leaves only the hand-out on the page).
document.addEventListener("click", function (ev) {
  var b = ev.target.closest && ev.target.closest("[data-print]");
  if (b) {
    ev.preventDefault();
    window.print();
  }
});

// A download form leaves the page where it is: give its button back after
// a moment, so the document can be downloaded again.
document.addEventListener("submit", function (ev) {
  var form = ev.target;
  if (!form.hasAttribute || !form.hasAttribute("data-download")) {
    return;
  }
  setTimeout(function () {
    form.dataset.submitted = "";
    form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = false; });
  }, 1500);
});
