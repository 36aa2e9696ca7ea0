"""`python -m bench NAME [--quick]`: run one benchmark, print its figures, write them as JSON."""

from __future__ import annotations

import argparse
import sys

from bench.procs import StartupError

BENCHMARKS = ("messages", "callbacks")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description="wxauth load benchmarks")
    parser.add_argument("name", choices=BENCHMARKS)
    parser.add_argument("--quick", action="store_true", help="a tiny configuration (smoke test), figures not comparable")
    parser.add_argument("--profile", action="store_true",
                        help="run the server under cProfile and print where its time goes (slower; JSON not written)")
    args = parser.parse_args(argv)
    if args.name == "messages":
        from bench.messages import main as run
    else:
        from bench.callbacks import main as run
    try:
        return run(quick=args.quick, profile=args.profile)
    except StartupError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted; every process it started is stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
