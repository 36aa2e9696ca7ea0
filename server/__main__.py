"""Command line: `python -m server` serves; `states`, `menu`, `users`, `audit`, `replies`, `admins` manage the data."""

from __future__ import annotations

import argparse
import os
import sys

import wxconfig


def build_parser() -> argparse.ArgumentParser:
    from server import cli
    from server.cli.base import say, speak_argparse
    from server.i18n import T

    # Help texts and argparse's own words are in the terminal's language (LC_ALL / LC_MESSAGES / LANG;
    # Chinese by default).
    speak_argparse()
    parser = argparse.ArgumentParser(prog="python -m server", description=say(T("wxauth: WeChat official-account server")))
    parser.add_argument("--port", type=int, help=say(T("listen port (default WX_PORT or 8000)")))
    parser.add_argument("--processes", type=int, default=1, help=say(T("number of server processes (0 = one per core)")))
    parser.add_argument("--sandbox", action="store_true",
                        help=say(T("demo credentials and a local stand-in for WeChat with a follower chat page")))
    parser.add_argument("--sandbox-port", type=int, default=None,
                        help=say(T("port of the WeChat stand-in (default: port+1)")))
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help=say(T("run the server (the default)")))

    cli.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = wxconfig.load(os.environ, sandbox=args.sandbox, port=args.port,
                               require_credentials=args.command in (None, "serve", "menu", "followers", "notify") or getattr(args, "follow", False))
    except wxconfig.ConfigError as exc:
        print(f"wxauth: {exc}", file=sys.stderr)
        return 2
    if args.command in (None, "serve"):
        from server.serve import run

        return run(config, processes=args.processes, sandbox_port=args.sandbox_port)
    from server import cli

    return cli.run(config, args)


if __name__ == "__main__":
    sys.exit(main())
