// The portal's only script besides htmx: a live countdown to each offer's deadline. Without it the page shows the
// deadline itself; the countdown is announced politely once a minute at most (its element is not a live region).
(function () {
  "use strict";
  function pad(n) { return String(n).padStart(2, "0"); }
  function tick() {
    document.querySelectorAll("[data-deadline]").forEach(function (el) {
      var left = Math.max(0, Math.floor((Date.parse(el.dataset.deadline) - Date.now()) / 1000));
      var d = Math.floor(left / 86400), h = Math.floor(left % 86400 / 3600), m = Math.floor(left % 3600 / 60);
      var text = (el.dataset.template || "{d} {h}:{m}:{s}").replace("{d}", d).replace("{h}", pad(h))
        .replace("{m}", pad(m)).replace("{s}", pad(left % 60));
      var out = el.querySelector(".left");
      if (out && out.textContent !== text) out.textContent = text;
      if (out) out.hidden = false;
    });
  }
  // After a boosted form post came back with errors, move focus to their summary (its links lead to the fields),
  // as a full page load of the same answer would have the reader start from it.
  document.addEventListener("htmx:afterSettle", function (event) {
    var errors = document.getElementById("form-errors");
    if (event.detail.target === document.body && errors && errors.textContent.trim()) errors.focus();
  });
  document.addEventListener("DOMContentLoaded", tick);
  document.addEventListener("htmx:afterSettle", tick);
  setInterval(tick, 1000);
})();
