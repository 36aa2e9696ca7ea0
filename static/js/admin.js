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

  // Words come from the page (data-* attributes written in the reader's language): "%(name)s"
  // in them is filled with values here.
  function fill(message, values) {
    return (message || "").replace(/%\((\w+)\)s/g, function (_, name) {
      return values[name] === undefined ? "" : String(values[name]);
    });
  }
  function number(n) { return n === null || n === undefined ? "?" : Number(n).toLocaleString("en-US"); }
  function label(el, status) { return el.getAttribute("data-label-" + status) || status; }
  function extras(el, p) {
    return (p.rate ? " · " + fill(el.dataset.rate, { rate: number(Math.round(p.rate)) }) : "")
      + (p.eta !== null && p.eta !== undefined ? " · " + fill(el.dataset.eta, { seconds: Math.round(p.eta) }) : "");
  }

  // Follower sync: while it runs, the bar and the counts follow /admin/users/sync once a second;
  // when it ends, the page is loaded again.
  var sync = document.getElementById("sync-status");
  var waits = 5;  // just after the button: the run may not have marked itself running yet
  function poll() {
    fetch(sync.dataset.progressUrl, { credentials: "same-origin" })
      .then(function (resp) { return resp.ok ? resp.json() : null; })
      .then(function (p) {
        if (!p) return;
        var bar = document.getElementById("sync-bar");
        bar.max = p.total || 1;
        bar.value = p.total ? p.seen : 0;
        var text = p.status === "never" ? label(sync, "never")
          : label(sync, p.status) + ": " + number(p.seen) + (p.total !== null && p.total !== undefined ? " / " + number(p.total) : "")
            + extras(sync, p) + (p.error ? " · " + p.error : "");
        sync.textContent = text;
        sync.dataset.status = p.status;
        if (p.counts) {
          document.querySelectorAll("#counts [data-count]").forEach(function (el) {
            var n = p.counts[el.dataset.count];
            if (n !== undefined && n !== null) el.textContent = String(n);
          });
        }
        var start = document.getElementById("sync-start");
        if (start) start.disabled = p.status === "running";
        // A run that ended after this page was made: the page again, so the user list shows what it wrote.
        if (p.status !== "running" && p.finished_at && Number(p.finished_at) !== Number(sync.dataset.finishedAt || 0)) {
          window.location.replace(window.location.pathname + "#sync");
          return;
        }
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
          status.textContent = label(status, p.status) + ": "
            + fill(status.dataset.counts, { sent: number(p.sent), failed: number(p.failed), remaining: number(p.remaining) })
            + extras(status, p)
            + (p.delivered !== undefined ? " · " + fill(status.dataset.delivered, { delivered: number(p.delivered) }) : "")
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
