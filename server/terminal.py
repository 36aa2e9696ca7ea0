"""Text from the database made safe for a terminal, and numbers read as ASCII digits only."""

from __future__ import annotations

import re

# C0 controls, DEL, C1 controls (0x9b is a one-byte CSI) and the bidi overrides: a nickname such
# as "\x1b[2J" or "\u202e" must not clear, recolour or reorder the operator's terminal (CWE-150).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_DIGITS = re.compile(r"\A[0-9]{1,18}\Z")


def _escape(match: re.Match) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe(value) -> str:
    """`value` as text with every control character written as an escape (\\x1b, \\u202e)."""
    return _UNSAFE.sub(_escape, "" if value is None else str(value))


def row(*fields) -> str:
    """One tab-separated output line; a tab or newline inside a field is escaped, not a separator."""
    return "\t".join(safe(f) for f in fields)


def digits(raw: str) -> int | None:
    """The number in `raw` when it is ASCII digits only, else None.

    str.isdigit() and int() also accept "²", "١٢" and "１２" (and int() takes " 1", "1_0", "+1"):
    fields that are digits take 0-9 and nothing else.
    """
    return int(raw) if isinstance(raw, str) and _DIGITS.match(raw) else None
