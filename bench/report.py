"""Prints a benchmark's figures as a table and writes them as JSON under test-output/bench/."""

from __future__ import annotations

import json
import os

from bench.procs import OUTPUT


def table(title: str, header: list[str], rows: list[list]) -> str:
    cells = [header] + [["-" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    out = [title, line]
    for n, row in enumerate(cells):
        out.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
        if n == 0:
            out.append(line)
    return "\n".join(out)


def write_json(name: str, data: dict) -> str:
    os.makedirs(OUTPUT, exist_ok=True)
    path = os.path.join(OUTPUT, name + ".json")
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(data, fh, ensure_ascii=False, indent=2)
        fh.write("\n")
    return path


def profile_summary(path: str, lines: int = 30) -> str:
    """The functions where the profiled server spent its own time, heaviest first."""
    import io
    import pstats

    out = io.StringIO()
    pstats.Stats(path, stream=out).strip_dirs().sort_stats("tottime").print_stats(lines)
    return out.getvalue()


def footer(machine: dict) -> str:
    return (f"generator: {machine['generator']}; busy = CPU seconds per wall second (1.0 = one core); "
            f"{machine['cpus']} CPUs, 1-min load {machine['load_average_1min_before']} before the run; "
            f"code {machine['code']}")


def verdict_lines(data: dict) -> list[str]:
    """The ratios and the goal lines under a benchmark's table."""
    lines = [f"{k:<40} {v}" for k, v in data["ratios"].items()]
    return lines + [f"{'goal: ' + k:<40} {v}" for k, v in data["goals"].items()]


def finish(name: str, data: dict, render, quick: bool, profile: bool) -> int:
    """Prints a benchmark's figures, and writes them as JSON unless the server was profiled."""
    print(render(data))
    if profile:
        # cProfile slows the server: these figures show where time goes, not how fast it is.
        print(profile_summary(data["profile"]))
        return 0
    path = write_json(f"{name}-quick" if quick else name, data)
    print(f"written: {path}")
    return 0
