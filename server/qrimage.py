"""QR code images (segno): an SVG to show on a page, a PNG at print size."""

from __future__ import annotations

import io

import segno

# Error correction M, as WeChat's own codes; scale 10 at 4 modules of quiet zone makes a code
# of about 7 cm at 300 dpi for a version-3 code, large enough for a poster or a desk sign.
PRINT_SCALE = 10


def qr_svg(text: str) -> str:
    """An inline SVG of a QR code of `text`, sized by CSS (no width/height, a viewBox)."""
    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind="svg", scale=5, border=2, xmldecl=False, svgns=True,
                                    title="QR code", svgclass="qr", lineclass=None, omitsize=True)
    return out.getvalue().decode("utf-8")


def qr_png(text: str, scale: int = PRINT_SCALE) -> bytes:
    """A PNG of a QR code of `text`."""
    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind="png", scale=scale, border=4)
    return out.getvalue()
