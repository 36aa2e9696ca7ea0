"""`notify`: a template message carrying an entry's link, to some followers, a tag or all of them."""

from __future__ import annotations

import json
import sys

from server.cli.base import CLI_USER, CommandError, say
from server.i18n import T
from server.notify import JobBusy, NotifyInvalid
from server.wechat.client import WeChatError, WeChatUnavailable
from server.wechat.failures import describe_failure


def add_parser(sub) -> None:
    notify = sub.add_parser("notify", help=say(T("send a template message with an entry's link (a resumable job)")))
    notify.add_argument("--template", metavar="TEMPLATE_ID",
                        help=say(T("a template of the account (see the admin's Notify page)")))
    notify.add_argument("--entry", metavar="KEY", help=say(T("the map entry whose /wx/go/<key> link the message opens")))
    notify.add_argument("--data", metavar="FILE.json",
                        help=say(T('the template\'s values: {"thing1": "Grades are out", ...}')))
    who = notify.add_mutually_exclusive_group()
    who.add_argument("--to", nargs="+", metavar="OPENID", help=say(T("these followers, by openid")))
    who.add_argument("--all", action="store_true", help=say(T("every subscribed follower (after `followers sync`)")))
    who.add_argument("--tag", metavar="TAG", help=say(T("subscribed followers with this tag id")))
    who.add_argument("--resume", metavar="JOB", help=say(T("run an unfinished job again (it sends nobody twice)")))
    who.add_argument("--cancel", metavar="JOB", help=say(T("stop a job after the messages in flight")))


def _read_values(path: str) -> dict[str, str]:
    try:
        with open(path, encoding="utf-8") as fh:
            values = json.load(fh)
    except OSError as exc:
        raise CommandError(T("cannot read %(path)s: %(reason)s", path=path, reason=exc.strerror)) from None
    except ValueError as exc:
        raise CommandError(T("%(path)s is not JSON: %(reason)s", path=path, reason=str(exc))) from None
    if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
        raise CommandError(T('%(path)s must be an object of strings, e.g. {"thing1": "Grades are out"}', path=path))
    return values


def progress_line(p: dict) -> str:
    parts = [say(T("%(sent)s sent, %(failed)s failed, %(remaining)s remaining",
                   sent=f"{p['sent']:,}", failed=f"{p['failed']:,}", remaining=f"{p['remaining']:,}"))]
    if p.get("rate"):
        parts.append(f"{p['rate']:,.0f}/s")
    if p.get("eta") is not None:
        parts.append(say(T("ETA %(seconds)s s", seconds=f"{p['eta']:.0f}")))
    return ", ".join(parts)


async def notify(services, args) -> int:
    jobs = services.notifications
    if args.cancel:
        if not await jobs.cancel(args.cancel):
            raise CommandError(T("no unfinished job %(job)s", job=repr(args.cancel)), code=1)
        print(say(T("cancelled %(job)s", job=args.cancel)))
        return 0
    if args.resume:
        job_id = args.resume
    else:
        if not (args.template and args.entry and args.data) or not (args.to or args.all or args.tag):
            raise CommandError(T("give --template, --entry, --data and one of --to, --all, --tag (or --resume JOB)"))
        target = {"to": args.to} if args.to else {"all": True} if args.all else {"tag": args.tag}
        try:
            job_id = await jobs.create(args.template, args.entry, _read_values(args.data), target, by=CLI_USER,
                                       run_here=True)
        except NotifyInvalid as exc:
            # Field names are the form's (data); each problem is rendered, a Text or a plain string.
            raise CommandError(T("cannot send:"), details=[f"{k}: {say(v)}" for k, v in exc.problems.items()]) from None
        except (WeChatError, WeChatUnavailable) as exc:
            raise CommandError(describe_failure(exc), code=1) from None
        print(say(T("job %(job)s", job=job_id)), flush=True)
    tty = sys.stderr.isatty()

    def show(p: dict) -> None:
        line = f"{job_id}: {progress_line(p)}"
        print(("\r" + line.ljust(78)) if tty else line, end="" if tty else "\n", file=sys.stderr, flush=True)

    try:
        result = await jobs.run(job_id, on_progress=show)
    except LookupError:
        raise CommandError(T("no job %(job)s", job=repr(job_id)), code=1) from None
    except JobBusy:
        raise CommandError(T("job %(job)s is running in another process", job=job_id), code=1) from None
    except (WeChatError, WeChatUnavailable) as exc:
        raise CommandError(T("%(reason)s; `notify --resume %(job)s` goes on later", reason=describe_failure(exc),
                             job=job_id), code=1) from None
    if tty:
        print(file=sys.stderr)
    print(say(T("%(job)s %(status)s: %(sent)s sent, %(failed)s failed", job=job_id, status=result["status"],
                sent=f"{result['sent']:,}", failed=f"{result['failed']:,}")))
    return 0


COMMANDS = {("notify", None): notify}
