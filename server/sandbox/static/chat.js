// The sandbox chat page: a follower's conversation with the official account.
// Everything shown is built with textContent; only http(s) anchors in a reply become links.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const log = $("log");
  // The page's words, in its language (chat.html's data-* attributes).
  const words = $("phone").dataset;
  const fill = (text, values) => text.replace(/%\((\w+)\)s/g, (m, name) => values[name]);
  const rendered = new Set();
  let lastId = 0;
  let state = null;

  async function api(path, body) {
    const options = { credentials: "same-origin" };
    if (body !== undefined) {
      options.method = "POST";
      options.headers = { "Content-Type": "application/json" };
      options.body = JSON.stringify(body);
    }
    const resp = await fetch(path, options);
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) throw new Error(data.error || resp.statusText);
    return data;
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function safeHref(href) {
    try {
      const url = new URL(href);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  // How WeChat shows a text reply: plain text, except <a href="http(s)://...">title</a>.
  const ANCHOR = /<a\s+(?:[^>]*?\s)?href\s*=\s*(["'])(.*?)\1[^>]*>([\s\S]*?)<\/a\s*>/gi;
  const ENTITIES = { amp: "&", lt: "<", gt: ">", quot: '"', "#39": "'", apos: "'" };

  function richText(node, text) {
    let last = 0;
    ANCHOR.lastIndex = 0;
    let match;
    while ((match = ANCHOR.exec(text)) !== null) {
      node.append(document.createTextNode(text.slice(last, match.index)));
      const href = safeHref(match[2].replace(/&(amp|lt|gt|quot|#39|apos);/g, (m, e) => ENTITIES[e]));
      if (href) {
        const link = el("a", null, match[3]);
        link.href = href;
        node.append(link);
      } else {
        node.append(document.createTextNode(match[0]));
      }
      last = ANCHOR.lastIndex;
    }
    node.append(document.createTextNode(text.slice(last)));
  }

  function face(entry) {
    const box = el("div", "face");
    if (entry.from === "follower" && state && state.follower.avatar) {
      const img = el("img");
      img.src = state.follower.avatar;
      img.alt = "";
      box.append(img);
    } else {
      box.textContent = entry.from === "follower" ? words.me : words.accountMark;
    }
    return box;
  }

  function eventLabel(entry) {
    switch (entry.event) {
      case "subscribe": return words.followed;
      case "unsubscribe": return words.unfollowed;
      case "VIEW": return "VIEW → " + entry.key;
      default: return entry.event + " " + entry.key;
    }
  }

  function render(entry) {
    if (rendered.has(entry.id)) return;
    rendered.add(entry.id);
    lastId = Math.max(lastId, entry.id);
    let node;
    if (entry.from === "system" || entry.type === "event") {
      node = el("div", "system");
      const label = entry.type === "event" ? eventLabel(entry) : entry.content;
      node.append(el("span", "notice", label));
      if (entry.problem) node.append(el("span", "problem", fill(words.problem, { problem: entry.problem })));
    } else {
      node = el("div", "row " + (entry.from === "follower" ? "follower" : "account"));
      node.append(face(entry));
      if (entry.type === "news") {
        node.append(newsCard(entry.articles && entry.articles[0]));
      } else if (entry.type === "template") {
        node.append(templateCard(entry));
      } else {
        const bubble = el("div", "bubble");
        if (entry.via === "custom") bubble.append(el("span", "via", words.custom));
        if (entry.type === "text") {
          if (entry.from === "follower") bubble.append(document.createTextNode(entry.content));
          else richText(bubble, entry.content);
        } else {
          bubble.append(document.createTextNode("[" + entry.type + " " + (entry.media_id || "") + "]"));
        }
        node.append(bubble);
      }
    }
    node.dataset.id = entry.id;
    log.append(node);
    log.scrollTop = log.scrollHeight;
  }

  // A template message (§13) as WeChat shows it: the title, the filled-in lines, Details for the link.
  function templateCard(entry) {
    const card = el("div", "template");
    card.append(el("div", "t", entry.title || ""));
    (entry.content || "").split("\n").forEach((line) => card.append(el("div", "line", line)));
    const href = safeHref(entry.url || "");
    if (href) {
      const more = el("a", "more", words.details);
      more.href = href;
      card.append(more);
    }
    return card;
  }

  function newsCard(article) {
    article = article || {};
    const href = safeHref(article.url || "");
    const card = el(href ? "a" : "div", "news");
    if (href) card.href = href;
    card.append(el("div", "t", article.title || ""));
    const pic = safeHref(article.picurl || "");
    if (pic) {
      const img = el("img");
      img.src = pic;
      img.alt = "";
      card.append(img);
    }
    card.append(el("div", "d", article.description || ""));
    return card;
  }

  function show(entries) {
    entries.slice().sort((a, b) => a.id - b.id).forEach(render);
  }

  function localNotice(text) {
    const node = el("div", "system");
    node.append(el("span", "notice", text));
    log.append(node);
    log.scrollTop = log.scrollHeight;
  }

  function applyState(next) {
    state = next;
    $("app-name").textContent = state.app_name;
    $("who").textContent = state.follower.nickname + " (" + state.follower.openid + ")";
    const hint = $("hint");
    hint.title = fill(words.server, { server: state.server_url || words.notSet, mode: state.mode });
    const select = $("follower");
    select.textContent = "";
    state.followers.forEach((f) => {
      const option = el("option", null, f.nickname);
      option.value = f.openid;
      option.selected = f.openid === state.follower.openid;
      select.append(option);
    });
    setSubscribed(state.follower.subscribed);
    renderMenu(state.menu);
  }

  function setSubscribed(subscribed) {
    $("text").disabled = !subscribed;
    $("send").disabled = !subscribed;
    $("follow").hidden = subscribed;
    $("unfollow").hidden = !subscribed;
  }

  function renderMenu(menu) {
    const bar = $("menu");
    bar.textContent = "";
    closeSubmenu();
    const buttons = (menu && menu.button) || [];
    if (!buttons.length) {
      // As on a phone: no menu until the account publishes one (/admin/menu, `menu publish`).
      bar.append(el("span", "muted", words.noMenu));
    }
    buttons.forEach((button) => {
      const item = el("button", null, button.name);
      item.type = "button";
      if (button.sub_button && button.sub_button.length) {
        item.classList.add("parent");
        item.addEventListener("click", () => openSubmenu(item, button.sub_button));
      } else {
        item.addEventListener("click", () => press(button));
      }
      bar.append(item);
    });
  }

  function openSubmenu(anchor, buttons) {
    const box = $("submenu");
    if (!box.hidden && box.dataset.owner === anchor.textContent) return closeSubmenu();
    box.textContent = "";
    buttons.forEach((button) => {
      const item = el("button", null, button.name);
      item.type = "button";
      item.addEventListener("click", () => { closeSubmenu(); press(button); });
      box.append(item);
    });
    box.dataset.owner = anchor.textContent;
    box.style.left = anchor.offsetLeft + "px";
    box.style.width = anchor.offsetWidth + "px";
    box.hidden = false;
  }

  function closeSubmenu() {
    $("submenu").hidden = true;
  }

  async function press(button) {
    if (button.type === "click") {
      await send({ type: "event", event: "CLICK", key: button.key });
    } else if (button.type === "view") {
      const href = safeHref(button.url);
      // WeChat pushes the VIEW event and opens the page at once; the page does not wait.
      await Promise.race([send({ type: "event", event: "VIEW", key: button.url }),
                          new Promise((resolve) => setTimeout(resolve, 1500))]);
      if (href) window.location.href = href;
    } else {
      localNotice(fill(words.unsimulated, { type: button.type }));
    }
  }

  async function send(body) {
    const typing = el("div", "typing", "…");
    log.append(typing);
    try {
      const result = await api("/chat/send", body);
      show(result.entries || []);
      setSubscribed(result.subscribed);
    } catch (e) {
      localNotice(fill(words.problem, { problem: e.message }));
    } finally {
      typing.remove();
    }
  }

  async function poll() {
    try {
      const inbox = await api("/chat/inbox?since=" + lastId);
      if (state && inbox.openid === state.follower.openid) show(inbox.entries);
    } catch (e) {
      // The sandbox was restarted or is gone; the next poll tries again.
    }
  }

  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("text");
    const content = input.value;
    if (!content.trim()) return;
    input.value = "";
    send({ type: "text", content: content });
  });
  // Scan (扫一扫): the phone opens what a QR code holds (a scan-to-sign-in URL, an entry's link, a
  // follow code's URL), in this tab, which the server treats as WeChat's browser.
  $("scan-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const href = safeHref($("scan-input").value.trim());
    if (!href) return localNotice(words.pasteUrl);
    window.location.assign(href);
  });
  $("follow").addEventListener("click", () => send({ type: "event", event: "subscribe" }));
  $("unfollow").addEventListener("click", () => send({ type: "event", event: "unsubscribe" }));
  $("follower").addEventListener("change", async (event) => {
    applyState(await api("/chat/follower", { openid: event.target.value }));
    log.textContent = "";
    rendered.clear();
    lastId = 0;
    await poll();
  });

  api("/chat/state").then((s) => { applyState(s); return poll(); })
    .catch((e) => localNotice(fill(words.problem, { problem: e.message })));
  setInterval(poll, 3000);
})();
