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
})();
