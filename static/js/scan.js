// The PC page of scan login: a long poll (the server answers when the code's status changes,
// or after 25 s), never a fast polling loop. On confirm the browser goes to /finish, which
// signs it in and moves on; on cancel or expiry it offers a fresh code.
(function () {
  "use strict";
  var box = document.getElementById("scan");
  if (!box) { return; }
  var token = box.getAttribute("data-token");
  // The admin pages finish their own codes (an admin session, not a follower's).
  var finish = box.getAttribute("data-finish") || ("/wx/scan/" + token + "/finish");
  var status = document.getElementById("scan-status");
  var again = document.getElementById("scan-again");
  // The words are the page's (data-say-<status>, templates/_scan_words.html), in the reader's language.
  function words(state) { return box.getAttribute("data-say-" + state); }

  function show(state) {
    status.textContent = words(state) || state;
    status.setAttribute("data-status", state);
    if (state === "cancelled" || state === "expired" || state === "used" || state === "refused" ||
        state === "denied") {
      again.hidden = false;  // its link is this page: loading it again makes a fresh code
    }
  }

  function poll(since, failures) {
    fetch("/wx/scan/" + token + "/wait?since=" + encodeURIComponent(since), { credentials: "same-origin" })
      .then(function (response) { return response.json().then(function (body) { return [response.status, body]; }); })
      .then(function (result) {
        var state = result[1].status;
        if (result[1].retry) { setTimeout(function () { poll(since, 0); }, 5000); return; }
        show(state);
        if (state === "confirmed") { window.location.assign(finish); return; }
        if (state === "pending" || state === "scanned") { poll(state, 0); }
      })
      .catch(function () {
        // A dropped connection (proxy timeout, sleep): back off, then go on waiting.
        setTimeout(function () { poll(since, failures + 1); }, Math.min(30000, 1000 * Math.pow(2, failures)));
      });
  }

  again.querySelector("a").setAttribute("href", window.location.pathname + window.location.search);
  show("pending");
  poll("pending", 0);
})();
