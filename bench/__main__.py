"""`python -m bench NAME [--quick]`: run one benchmark, print its figures, write them as JSON."""

from __future__ import annotations

import argparse
import sys

from bench.procs import StartupError

BENCHMARKS = ("messages", "callbacks", "soak", "scanlogin", "followers", "notify")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description="wxauth load benchmarks")
    parser.add_argument("name", choices=BENCHMARKS)
    parser.add_argument("--quick", action="store_true", help="a tiny configuration (smoke test), figures not comparable")
    parser.add_argument("--profile", action="store_true",
                        help="run the server under cProfile and print where its time goes (slower; JSON not written)")
    parser.add_argument("--baseline", metavar="REV", default=None,
                        help="messages only: also measure the server at git revision REV, in the same rounds")
    parser.add_argument("--minutes", type=float, default=None,
                        help="soak only: how long the load runs (default 10; --quick: 30 s)")
    args = parser.parse_args(argv)
    options = {"quick": args.quick, "profile": args.profile}
    if args.minutes is not None and args.name != "soak":
        parser.error("--minutes applies to soak only")
    if args.baseline and args.name != "messages":
        parser.error("--baseline applies to messages only")
    if args.profile and args.name in ("soak", "scanlogin", "followers", "notify"):
        # A soak watches memory over minutes; a profiler's own records would be part of what it measured.
        parser.error(f"--profile does not apply to {args.name}")
    if args.name == "soak":
        if args.minutes is not None and args.minutes <= 0:
            parser.error("--minutes must be positive")
        from bench.soak import main as run

        options = {"quick": args.quick, "minutes": args.minutes or 10.0}
    elif args.name == "messages":
        from bench.messages import main as run

        options["baseline"] = args.baseline
    elif args.name == "callbacks":
        from bench.callbacks import main as run
    elif args.name == "followers":
        from bench.followers import main as run

        options = {"quick": args.quick}
    elif args.name == "notify":
        from bench.notify import main as run

        options = {"quick": args.quick}
    else:
        from bench.scanlogin import main as run

        options = {"quick": args.quick}
    try:
        return run(**options)
    except StartupError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted; every process it started is stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
