"""The button builder on /admin/menu: form slots to a menu and back.

Each slot is "b<i>" (top) or "b<i>s<j>" (sub); its fields are <slot>_name, <slot>_kind and
<slot>_key (a state key) or <slot>_url. Kinds: "" (unused), "sub" (opens sub-buttons, top only),
"view" (opens a state entry's link), "click" (the entry's link arrives as a message), "url".
"""

from __future__ import annotations

import re

from server.i18n import T, Text
from server.links import entry_key_of, entry_url
from server.wechat.menu import MAX_SUB, MAX_TOP, validate_menu

# The form fields the builder reads; anything else posted is ignored.
SLOT_FIELD = re.compile(r"^b\d(s\d)?_(name|kind|key|url)$")
BUILDER_KINDS = ("", "view", "click", "url", "sub")


def slot_name(i: int, j: int | None = None) -> str:
    return f"b{i}" if j is None else f"b{i}s{j}"


def menu_from_slots(form: dict, app_host: str) -> tuple[dict, dict[str, Text]]:
    """The menu the builder form describes, and problems keyed by form field (name, key, url)."""
    errors: dict[str, Text] = {}
    buttons, origin = [], []

    def leaf(slot: str, kind: str, name: str) -> dict | None:
        key = form.get(f"{slot}_key", "").strip()
        if kind in ("view", "click"):
            if not key:
                errors[f"{slot}_key"] = T("choose an entry")
                return None
            if kind == "view":
                return {"type": "view", "name": name, "url": entry_url(app_host, key)}
            return {"type": "click", "name": name, "key": key}
        if kind == "url":
            return {"type": "view", "name": name, "url": form.get(f"{slot}_url", "").strip()}
        errors[f"{slot}_kind"] = T("choose what the button does")
        return None

    for i in range(MAX_TOP):
        slot = slot_name(i)
        name, kind = form.get(f"{slot}_name", "").strip(), form.get(f"{slot}_kind", "")
        if not name and not kind:
            continue
        if kind == "sub":
            subs, sub_origin = [], []
            for j in range(MAX_SUB):
                sub_slot = slot_name(i, j)
                sub_name, sub_kind = form.get(f"{sub_slot}_name", "").strip(), form.get(f"{sub_slot}_kind", "")
                if not sub_name and not sub_kind:
                    continue
                made = leaf(sub_slot, sub_kind, sub_name)
                if made is not None:
                    subs.append(made)
                    sub_origin.append(sub_slot)
            if not subs and f"{slot}_kind" not in errors:
                errors[f"{slot}_kind"] = T("add at least one sub-button below")
            buttons.append({"name": name, "sub_button": subs})
            origin.append((slot, sub_origin))
        else:
            made = leaf(slot, kind, name)
            if made is not None:
                buttons.append(made)
                origin.append((slot, []))
    menu = {"button": buttons}
    if not buttons and not errors:
        errors["b0_name"] = T("a menu needs at least one button")
    for problem in validate_menu(menu) if buttons else []:
        if not problem.path:
            continue
        slot, sub_origin = origin[problem.path[0]]
        if len(problem.path) == 2:
            slot = sub_origin[problem.path[1]]
        field = {"name": "name", "key": "key", "url": "url" if form.get(f"{slot}_kind") == "url" else "key"}.get(
            problem.field, "kind")
        errors.setdefault(f"{slot}_{field}", problem.message)
    return menu, errors


def slots_from_menu(menu: dict | None, app_host: str) -> tuple[dict[str, str], bool]:
    """The builder form for a saved menu, and whether the builder can show all of it."""
    form: dict[str, str] = {}
    complete = True

    def fill(slot: str, button: dict) -> None:
        nonlocal complete
        form[f"{slot}_name"] = button.get("name", "")
        kind, key = button.get("type"), None
        if kind == "view":
            key = entry_key_of(button.get("url", ""), app_host)
            form[f"{slot}_kind"] = "view" if key else "url"
            form[f"{slot}_key" if key else f"{slot}_url"] = key or button.get("url", "")
        elif kind == "click":
            form[f"{slot}_kind"], form[f"{slot}_key"] = "click", button.get("key", "")
        else:
            complete = False

    for i, button in enumerate((menu or {}).get("button", [])[:MAX_TOP]):
        if button.get("sub_button"):
            form[f"b{i}_name"], form[f"b{i}_kind"] = button.get("name", ""), "sub"
            for j, sub in enumerate(button["sub_button"][:MAX_SUB]):
                fill(slot_name(i, j), sub)
        else:
            fill(slot_name(i), button)
    return form, complete


# ---- saving and publishing -----------------------------------------------------------------------
