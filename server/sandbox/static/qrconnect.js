// The stand-in's website-login page: it checks every second whether the phone allowed the
// sign-in, then goes to the website's redirect_uri with the code, as WeChat's page does.
(function () {
  "use strict";
  var box = document.getElementById("qrconnect");
  var status = document.getElementById("qrconnect-status");
  function check() {
    fetch("/connect/qrconnect/status?uuid=" + encodeURIComponent(box.getAttribute("data-uuid")))
      .then(function (r) { return r.json(); })
      .then(function (body) {
        if (body.redirect) { window.location.assign(body.redirect); return; }
        if (body.status === "refused") { status.textContent = box.getAttribute("data-refused"); }
        setTimeout(check, 1000);
      })
      .catch(function () { setTimeout(check, 2000); });
  }
  setTimeout(check, 1000);
})();
