// The stand-in's jweixin-1.6.0.js: WeChat's JS-SDK as a page sees it (docs/wechat-protocol.md §9,
// §15), for the sandbox. wx.config is checked as WeChat checks it, by the stand-in server that
// knows the ticket (POST /js/verify, CORS for the app's origin); the share APIs then show the card
// on the page, since there is no ··· menu to share from. Nothing here is secret.
(function () {
  "use strict";
  var script = document.currentScript;
  var VERIFY = new URL("/js/verify", script ? script.src : location.href).href;
  // §15.5: iOS WeChat verifies the URL the web view first landed on (the navigation entry's, which
  // pushState/replaceState do not change), Android the current one.
  var NAV = window.performance && performance.getEntriesByType ? performance.getEntriesByType("navigation")[0] : null;
  var LANDING = ((NAV && NAV.name) || location.href).split("#")[0];
  var IOS = /iPhone|iPad|iPod/.test(navigator.userAgent);

  var state = "idle";  // idle -> verifying -> ok | failed
  var apis = [];
  var readyFns = [];
  var errorFns = [];
  var errorRes = null;

  function box(id, title) {
    var el = document.getElementById(id);
    if (!el) {
      el = document.createElement("aside");
      el.id = id;
      // CSSOM, not a style attribute: the page's CSP (style-src 'self') allows only this.
      el.style.margin = "16px auto";
      el.style.maxWidth = "420px";
      el.style.padding = "12px";
      el.style.borderRadius = "8px";
      el.style.fontSize = "14px";
      el.style.wordBreak = "break-all";
      var head = document.createElement("div");
      head.style.fontWeight = "600";
      head.textContent = title;
      el.appendChild(head);
      document.body.appendChild(el);
    }
    return el;
  }

  function line(el, cls, text) {
    var row = el.querySelector("." + cls);
    if (!row) {
      row = document.createElement("div");
      row.className = cls;
      el.appendChild(row);
    }
    row.textContent = text;  // text, never HTML: titles come from admins and pages
    return row;
  }

  function showError(errMsg) {
    var el = box("wx-sandbox-error", "wx.config 失败 (沙箱 JS-SDK) / wx.config failed (stand-in JS-SDK)");
    el.style.background = "#fff0f0";
    el.style.color = "#c4191f";
    line(el, "errmsg", errMsg);
  }

  function call(fn, arg) {
    if (typeof fn === "function") {
      try { fn(arg); } catch (e) { setTimeout(function () { throw e; }); }
    }
  }

  function settle(res) {
    if (res.errMsg === "config:ok") {
      state = "ok";
    } else {
      state = "failed";
      errorRes = res;
      showError(res.errMsg);
      errorFns.forEach(function (fn) { call(fn, res); });
    }
    // §15.3 (community): wx.ready fires even after wx.error; pages keep their own flag.
    readyFns.forEach(function (fn) { call(fn); });
  }

  function allowed(name, options) {
    if (state !== "ok" || apis.indexOf(name) < 0) {
      call(options.fail, { errMsg: name + ":the permission value is offline verifying" });
      call(options.complete, {});
      return false;
    }
    return true;
  }

  function shareCard(name, label, options) {
    if (!allowed(name, options || (options = {}))) { return; }
    // §15.6: the share link must be on the page's JS safe domain.
    var link;
    try { link = new URL(String(options.link || ""), location.href); } catch (e) { link = null; }
    if (!link || link.hostname !== location.hostname) {
      call(options.fail, { errMsg: name + ":fail, the link is not on this page's JS safe domain (stand-in)" });
      call(options.complete, {});
      return;
    }
    var el = box("wx-sandbox-share", "分享卡片已设置 (沙箱 JS-SDK) / Share card set (stand-in JS-SDK)");
    el.style.background = "#f0fff4";
    el.style.color = "#191919";
    var row = line(el, name, label + ": " + String(options.title || ""));
    row.setAttribute("data-title", String(options.title || ""));
    row.setAttribute("data-link", link.href);
    var a = document.createElement("a");
    a.href = link.href;
    a.textContent = " " + link.href;
    row.appendChild(a);
    call(options.success, { errMsg: name + ":ok" });
    call(options.complete, {});
  }

  var wx = {
    config: function (config) {
      config = config || {};
      apis = Array.isArray(config.jsApiList) ? config.jsApiList.slice() : [];
      state = "verifying";
      var body = {
        appId: config.appId, timestamp: config.timestamp, nonceStr: config.nonceStr,
        signature: config.signature, url: IOS ? LANDING : location.href.split("#")[0]
      };
      fetch(VERIFY, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) })
        .then(function (response) { return response.json(); })
        .then(settle)
        .catch(function () { settle({ errMsg: "config:fail, the stand-in did not answer" }); });
    },
    ready: function (fn) {
      if (state === "ok" || state === "failed") { call(fn); } else { readyFns.push(fn); }
    },
    error: function (fn) {
      if (state === "failed") { call(fn, errorRes); } else { errorFns.push(fn); }
    },
    updateAppMessageShareData: function (options) {
      shareCard("updateAppMessageShareData", "聊天 Chat", options);
    },
    updateTimelineShareData: function (options) {
      shareCard("updateTimelineShareData", "朋友圈 Moments", options);
    }
  };
  window.wx = window.jWeixin = wx;
}());
