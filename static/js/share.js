// Sets a business page's share card with WeChat's JS-SDK (docs/wechat-protocol.md §9, §15):
// wx.config with the server's signature, then, once it succeeded, the title and /wx/go/<key> link
// of the page's map entry for chats and Moments. The data come from #wx-share's data- attributes
// (templates/_share.html); the page's CSP allows no inline script.
(function () {
  "use strict";
  var box = document.getElementById("wx-share");
  if (!box || !window.wx) { return; }
  var data = function (name) { return box.getAttribute("data-" + name) || ""; };
  var APIS = ["updateAppMessageShareData", "updateTimelineShareData"];

  // The URL WeChat will verify (§15.5): Android WeChat verifies the current URL, iOS WeChat the URL
  // the web view landed on, even after history.pushState/replaceState. The landing URL is the
  // navigation entry's (the document as loaded; a script's replaceState does not change it).
  // The server signed WX_APP_HOST + the request's path and query, which is the landing URL unless
  // the site was reached under another name; when the URL WeChat will verify is not the one the
  // server signed (another host name, or on Android a URL rewritten before this script ran), the
  // page asks /wx/jsconfig to sign that one.
  var nav = window.performance && performance.getEntriesByType ? performance.getEntriesByType("navigation")[0] : null;
  var landing = ((nav && nav.name) || location.href).split("#")[0];
  var ios = /iPhone|iPad|iPod/.test(navigator.userAgent);
  var verified = ios ? landing : location.href.split("#")[0];

  var failed = false;  // §15.3: wx.ready is reported to fire even after wx.error: keep our own flag

  function show(state, detail) {
    box.setAttribute("data-state", state);
    if (detail) { box.setAttribute("data-error", detail); }
  }

  function configure(config) {
    wx.config({
      debug: false,
      appId: config.appId,
      timestamp: Number(config.timestamp),
      nonceStr: config.nonceStr,
      signature: config.signature,
      jsApiList: APIS
    });
  }

  wx.error(function (res) {
    failed = true;
    show("error", (res && res.errMsg) || "config failed");
  });

  wx.ready(function () {
    if (failed) { return; }
    var card = {
      title: data("title"),
      desc: data("title"),
      link: data("link"),
      success: function () { show("ready"); },
      fail: function (res) { show("error", (res && res.errMsg) || "share data refused"); }
    };
    wx.updateAppMessageShareData(card);
    wx.updateTimelineShareData({ title: card.title, link: card.link, success: card.success, fail: card.fail });
  });

  if (data("url") === verified) {
    configure({ appId: data("app-id"), timestamp: data("timestamp"), nonceStr: data("nonce-str"),
                signature: data("signature") });
    return;
  }
  fetch("/wx/jsconfig?url=" + encodeURIComponent(verified), { credentials: "same-origin" })
    .then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) { throw new Error(body.error || ("HTTP " + response.status)); }
        return body;
      });
    })
    .then(configure)
    .catch(function (err) { failed = true; show("error", "jsconfig: " + err.message); });
}());
