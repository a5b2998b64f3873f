// Warden console: live updates. Parts of a page marked `data-live` are
// fetched again from the server (which renders them with the viewer's
// rights and escapes every value) when the evidence log grows. No value is
// ever inserted as HTML from anywhere else; the page works without this
// script, only without live updates.
"use strict";
(function () {
  var live = document.querySelectorAll("[data-live][id]");
  if (!live.length || !window.EventSource || !window.DOMParser) return;
  var timer = null;
  var busy = false;
  function refresh() {
    if (busy) { timer = setTimeout(refresh, 200); return; }
    busy = true;
    fetch(location.href, { credentials: "same-origin", headers: { "X-Warden-Live": "1" } })
      .then(function (res) {
        if (res.redirected || !res.ok) { throw new Error("status " + res.status); }
        return res.text();
      })
      .then(function (text) {
        var doc = new DOMParser().parseFromString(text, "text/html");
        document.querySelectorAll("[data-live][id]").forEach(function (el) {
          var fresh = doc.getElementById(el.id);
          if (fresh) { el.replaceWith(document.importNode(fresh, true)); }
        });
        document.body.setAttribute("data-refreshed", String(Date.now()));
      })
      .catch(function () { /* the next event tries again */ })
      .finally(function () { busy = false; });
  }
  var events = new EventSource("/console/events");
  events.addEventListener("change", function () {
    clearTimeout(timer);
    timer = setTimeout(refresh, 100);
  });
  events.addEventListener("open", function () {
    document.body.setAttribute("data-live-connected", "1");
  });
})();
