// The portal's only script besides htmx: a live countdown to each offer's deadline (without it the page shows the
// deadline itself; the countdown is announced politely once a minute at most: its element is not a live region),
// and the pace of the live list of "my applications".
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
  // The live list (#entries, entries_block.html: hx-trigger="poll") asks whether it changed every 5 s while the page
  // is shown; nothing while the tab is hidden (bench_load: an open page's polls cost more than the whole API mix),
  // at once when it is shown again; after 5 minutes without a change, every 15 s until something moves.
  var POLL_MS = 5000, QUIET_MS = 300000, QUIET_POLL_MS = 15000;
  var lastAsked = Date.now(), lastChange = Date.now(), shownVersion = null;
  function ask() {
    var list = document.getElementById("entries");
    if (!list || document.hidden || !window.htmx) return;
    lastAsked = Date.now();
    window.htmx.trigger(list, "poll");
  }
  function pace() {
    var list = document.getElementById("entries");
    if (!list) return;
    if (list.dataset.version !== shownVersion) { shownVersion = list.dataset.version; lastChange = Date.now(); }
    var every = Date.now() - lastChange >= QUIET_MS ? QUIET_POLL_MS : POLL_MS;
    if (Date.now() - lastAsked >= every) ask();
  }
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) { lastChange = Date.now(); ask(); }
  });
  setInterval(pace, 1000);
  document.addEventListener("DOMContentLoaded", tick);
  document.addEventListener("htmx:afterSettle", tick);
  setInterval(tick, 1000);
})();
