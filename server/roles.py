"""Admin roles and names: who may do what (owner > editor > viewer), checked in one place (handlers/admin/base.py)."""

from __future__ import annotations

import re

from server.i18n import T

ROLES = ("owner", "editor", "viewer")
_RANK = {"viewer": 0, "editor": 1, "owner": 2}
# What a page or template asks for, and the least role that may do it.
NEEDS = {"view": "viewer", "edit": "editor", "manage": "owner"}
# What pages call roles and account states; the stored values stay the words the commands take.
LABELS = {"owner": T("Owner"), "editor": T("Editor"), "viewer": T("Viewer"),
          "active": T("Active"), "invited": T("Invited"), "disabled": T("Disabled")}
# Names are printed in the audit log, on pages and in terminals: a narrow charset keeps them
# free of markup, controls and look-alikes (CWE-116).
NAME_RE = re.compile(r"\A[a-z0-9_.-]{1,32}\Z")


def is_name(value) -> bool:
    return isinstance(value, str) and bool(NAME_RE.match(value))


def allows(role: str | None, needed: str | None) -> bool:
    """True when `role` may do what `needed` (a role, or None for "anyone signed in") requires."""
    if needed is None:
        return True
    return role in _RANK and _RANK[role] >= _RANK[needed]


def label(value):
    """A role or an account state for a page (a Text); anything else as it is."""
    return LABELS.get(value, value)
