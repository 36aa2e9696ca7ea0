"""`notify`: a template message carrying an entry's link, to some followers, a tag or all of them."""

from __future__ import annotations

import json
import sys

from server.cli.base import CLI_USER, CommandError
from server.notify import JobBusy, NotifyInvalid
from server.wechat.client import WeChatError, WeChatUnavailable
from server.wechat.failures import describe_failure


def add_parser(sub) -> None:
    notify = sub.add_parser("notify", help="send a template message with an entry's link (a resumable job)")
    notify.add_argument("--template", metavar="TEMPLATE_ID", help="a template of the account (see the admin's 通知 page)")
    notify.add_argument("--entry", metavar="KEY", help="the map entry whose /wx/go/<key> link the message opens")
    notify.add_argument("--data", metavar="FILE.json", help='the template\'s values: {"thing1": "成绩已发布", ...}')
    who = notify.add_mutually_exclusive_group()
    who.add_argument("--to", nargs="+", metavar="OPENID")
    who.add_argument("--all", action="store_true", help="every subscribed follower (after `followers sync`)")
    who.add_argument("--tag", metavar="TAG", help="subscribed followers with this tag id")
    who.add_argument("--resume", metavar="JOB", help="run an unfinished job again (it sends nobody twice)")
    who.add_argument("--cancel", metavar="JOB", help="stop a job after the messages in flight")


def _read_values(path: str) -> dict[str, str]:
    try:
        with open(path, encoding="utf-8") as fh:
            values = json.load(fh)
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise CommandError(f"{path} is not JSON: {exc}") from None
    if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
        raise CommandError(f'{path} must be an object of strings, e.g. {{"thing1": "成绩已发布"}}')
    return values


def progress_line(p: dict) -> str:
    parts = [f"{p['sent']:,} sent", f"{p['failed']:,} failed", f"{p['remaining']:,} remaining"]
    if p.get("rate"):
        parts.append(f"{p['rate']:,.0f}/s")
    if p.get("eta") is not None:
        parts.append(f"ETA {p['eta']:.0f} s")
    return ", ".join(parts)


async def notify(services, args) -> int:
    jobs = services.notifications
    if args.cancel:
        if not await jobs.cancel(args.cancel):
            raise CommandError(f"no unfinished job {args.cancel!r}", code=1)
        print(f"cancelled {args.cancel}")
        return 0
    if args.resume:
        job_id = args.resume
    else:
        if not (args.template and args.entry and args.data) or not (args.to or args.all or args.tag):
            raise CommandError("give --template, --entry, --data and one of --to, --all, --tag (or --resume JOB)")
        target = {"to": args.to} if args.to else {"all": True} if args.all else {"tag": args.tag}
        try:
            job_id = await jobs.create(args.template, args.entry, _read_values(args.data), target, by=CLI_USER,
                                       run_here=True)
        except NotifyInvalid as exc:
            raise CommandError("cannot send:\n  " + "\n  ".join(f"{k}: {v}" for k, v in exc.problems.items())) from None
        except (WeChatError, WeChatUnavailable) as exc:
            raise CommandError(describe_failure(exc), code=1) from None
        print(f"job {job_id}", flush=True)
    tty = sys.stderr.isatty()

    def show(p: dict) -> None:
        line = f"{job_id}: {progress_line(p)}"
        print(("\r" + line.ljust(78)) if tty else line, end="" if tty else "\n", file=sys.stderr, flush=True)

    try:
        result = await jobs.run(job_id, on_progress=show)
    except LookupError:
        raise CommandError(f"no job {job_id!r}", code=1) from None
    except JobBusy:
        raise CommandError(f"job {job_id} is running in another process", code=1) from None
    except (WeChatError, WeChatUnavailable) as exc:
        raise CommandError(f"{describe_failure(exc)}; `notify --resume {job_id}` goes on later", code=1) from None
    if tty:
        print(file=sys.stderr)
    print(f"{job_id} {result['status']}: {result['sent']:,} sent, {result['failed']:,} failed")
    return 0


COMMANDS = {("notify", None): notify}
