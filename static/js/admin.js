// Admin pages, progressive enhancement only: every page works without this file.
// Loaded from our own origin (the CSP forbids inline scripts); it never touches innerHTML.
"use strict";
(function () {
  document.documentElement.classList.add("js");

  // Forms with data-confirm (deleting an entry) ask first.
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });

  // Menu builder: show only the inputs the chosen button kind uses.
  function update(select) {
    var slot = select.dataset.kindOf;
    var box = select.closest("fieldset.slot");
    var kind = select.value;
    box.querySelectorAll(":scope > .slot-fields > .for-entry").forEach(function (el) {
      el.hidden = kind !== "view" && kind !== "click";
    });
    box.querySelectorAll(":scope > .slot-fields > .for-url").forEach(function (el) {
      el.hidden = kind !== "url";
    });
    var subs = document.querySelector('[data-subs-of="' + slot + '"]');
    if (subs) subs.hidden = kind !== "sub";
  }
  document.querySelectorAll("select[data-kind-of]").forEach(function (select) {
    update(select);
    select.addEventListener("change", function () { update(select); });
  });

  // Follower sync: while it runs, the bar and the counts follow /admin/users/sync once a second.
  var sync = document.getElementById("sync-status");
  function number(n) { return n === null || n === undefined ? "?" : Number(n).toLocaleString("en-US"); }
  var waits = 5;  // just after the button: the run may not have marked itself running yet
  function poll() {
    fetch(sync.dataset.progressUrl, { credentials: "same-origin" })
      .then(function (resp) { return resp.ok ? resp.json() : null; })
      .then(function (p) {
        if (!p) return;
        var bar = document.getElementById("sync-bar");
        bar.max = p.total || 1;
        bar.value = p.total ? p.seen : 0;
        var text = (p.status === "running" ? "同步中 / Running: " : p.status === "done" ? "已完成 / Done: " : p.status + ": ")
          + number(p.seen) + (p.total !== null ? " / " + number(p.total) : "")
          + (p.rate ? " · " + number(Math.round(p.rate)) + "/s" : "")
          + (p.eta !== null && p.eta !== undefined ? " · ETA " + Math.round(p.eta) + " s" : "")
          + (p.error ? " · " + p.error : "");
        sync.textContent = text;
        sync.dataset.status = p.status;
        document.getElementById("sync-start").disabled = p.status === "running";
        if (p.status === "running" || waits-- > 0) window.setTimeout(poll, 1000);
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  if (sync && (sync.dataset.status === "running" || /[?&]sync=1/.test(window.location.search))) poll();

  // Notification jobs: each unfinished one follows its JSON once a second.
  document.querySelectorAll(".job-status[data-job-url]").forEach(function (status) {
    var waiting = 5;
    function follow() {
      fetch(status.dataset.jobUrl, { credentials: "same-origin" })
        .then(function (resp) { return resp.ok ? resp.json() : null; })
        .then(function (p) {
          if (!p) return;
          var bar = status.parentNode.querySelector("progress");
          bar.max = p.total || 1;
          bar.value = p.sent + p.failed;
          status.textContent = p.status + ": " + number(p.sent) + " sent, " + number(p.failed) + " failed, "
            + number(p.remaining) + " remaining" + (p.rate ? " · " + number(Math.round(p.rate)) + "/s" : "")
            + (p.eta !== null && p.eta !== undefined ? " · ETA " + Math.round(p.eta) + " s" : "")
            + (p.delivered !== undefined ? " · " + number(p.delivered) + " delivered" : "")
            + (p.error ? " · " + p.error : "");
          status.dataset.status = p.status;
          if (p.status === "running" || (p.status === "queued" && waiting-- > 0)) window.setTimeout(follow, 1000);
        })
        .catch(function () { window.setTimeout(follow, 3000); });
    }
    if (status.dataset.status === "running" || status.dataset.status === "queued") follow();
  });

  // Choosing a template shows its fields at once.
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });
})();
