"""Chart geometry for the admin pages: numbers in, bar positions out (the template draws the SVG)."""

from __future__ import annotations

import datetime


def daily_bars(daily: list[tuple[datetime.date, int]], width: int = 600, height: int = 120) -> dict:
    """Bars for a count per day: no script and no chart library, so the page's CSP stays strict."""
    top = max((count for _, count in daily), default=0)
    scale = max(top, 1)
    step = width / max(len(daily), 1)
    bars = []
    for i, (day, count) in enumerate(daily):
        h = round(count / scale * (height - 20), 1)
        last = i == len(daily) - 1
        bars.append({"x": round(i * step + 1, 1), "y": round(height - 16 - h, 1), "w": round(step - 2, 1), "h": h,
                     "day": day.isoformat(), "count": count,
                     # A date under every fifth bar and the last one; the last is right-aligned to stay inside.
                     "label": day.strftime("%m-%d") if i % 5 == 0 or last else "",
                     "anchor": "end" if last else "start",
                     "label_x": round((i + 1) * step - 1, 1) if last else round(i * step + 1, 1)})
    return {"bars": bars, "width": width, "height": height, "max": top, "total": sum(c for _, c in daily),
            "base": height - 16}


def sparkline(values: list[int], width: int = 84, height: int = 20) -> dict:
    """Points of a small line chart (an SVG polyline) for a table cell."""
    top = max(max(values, default=0), 1)
    step = width / max(len(values) - 1, 1)
    points = " ".join(f"{round(i * step, 1)},{round(height - 1 - v / top * (height - 2), 1)}" for i, v in enumerate(values))
    return {"points": points, "width": width, "height": height, "total": sum(values), "max": max(values, default=0)}
