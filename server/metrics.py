"""Prometheus metrics: requests, latency, messages, authorizations, WeChat calls, dedup hits.

With several worker processes, PROMETHEUS_MULTIPROC_DIR (set by server/serve.py before the
fork) makes every process write to shared files that /metrics aggregates.
"""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter("wxauth_http_requests_total", "HTTP requests by route and status", ["route", "method", "status"])
LATENCY = Histogram("wxauth_http_request_seconds", "HTTP request latency by route", ["route"], buckets=_BUCKETS)
MESSAGES = Counter("wxauth_messages_total", "WeChat messages and events handled, by type", ["type"])
AUTHORIZATIONS = Counter("wxauth_authorizations_total", "Authorization callbacks by result", ["result"])
WECHAT_CALLS = Counter("wxauth_wechat_calls_total", "Calls to WeChat APIs by endpoint and outcome", ["endpoint", "outcome"])
WECHAT_LATENCY = Histogram("wxauth_wechat_call_seconds", "Latency of WeChat API calls", ["endpoint"], buckets=_BUCKETS)
DEDUP_HITS = Counter("wxauth_dedup_hits_total", "WeChat retries answered with the first delivery's reply")
# Refusal kinds are the fixed words of server/messaging.py's Rejected, never text from a request.
REFUSALS = Counter("wxauth_messages_refused_total", "POST/GET /wx refused, by kind", ["kind"])
REFUSAL_KINDS = frozenset({"signature", "timestamp", "stale", "replay", "addressee", "plaintext",
                           "malformed", "too_large", "decrypt", "other"})
SCAN_STEPS = Counter("wxauth_scan_login_steps_total", "Scan-login steps: started, scanned, confirmed, ...", ["step"])
USER_WRITES_PENDING = Gauge("wxauth_user_writes_pending", "Follower writes waiting for MongoDB", multiprocess_mode="livesum")
USER_WRITES_DROPPED = Counter("wxauth_user_writes_dropped_total", "Follower writes dropped: the queue was full")


# Label values come from these fixed sets, never from a request as sent: an unknown MsgType or
# Event (a new WeChat feature, or a signed request carrying anything) counts as "other", so the
# number of time series and the size of /metrics stay bounded (CWE-770).
MESSAGE_TYPES = frozenset({"text", "image", "voice", "video", "shortvideo", "location", "link"})
EVENT_TYPES = frozenset({"subscribe", "unsubscribe", "scan", "location", "click", "view", "view_miniprogram",
                         "templatesendjobfinish", "scancode_waitmsg", "scancode_push", "pic_sysphoto",
                         "pic_photo_or_album", "pic_weixin", "location_select"})
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})


def message_label(message) -> str:
    kind = (message.msg_type or "").lower()
    if kind == "event":
        event = (getattr(message, "event", "") or "").lower()
        return "event:" + (event if event in EVENT_TYPES else "other")
    return kind if kind in MESSAGE_TYPES else "other"


def route_label(handler_class: type) -> str:
    """A route's label: module under handlers/ and class ("page.HomeHandler", "admin.signin.HomeHandler"),
    unique per class."""
    module = handler_class.__module__.removeprefix("handlers.")
    return f"{module}.{handler_class.__name__}"


class Metrics:
    """The one object services and handlers report to (kept small so tests can read it)."""

    def __init__(self):
        # labels() hashes and locks on every call; the request path is hot, so its children
        # (a bounded set: handler classes x methods x statuses) are looked up once.
        self._request_children: dict[tuple, tuple] = {}

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        method = method if method in METHODS else "other"
        children = self._request_children.get((route, method, status))
        if children is None:
            children = self._request_children[(route, method, status)] = (
                REQUESTS.labels(route, method, str(status)), LATENCY.labels(route))
        children[0].inc()
        children[1].observe(seconds)

    def message(self, message) -> None:
        MESSAGES.labels(message_label(message)).inc()

    def authorization(self, result: str) -> None:
        AUTHORIZATIONS.labels(result).inc()

    def wechat_call(self, endpoint: str, outcome: str, seconds: float) -> None:
        WECHAT_CALLS.labels(endpoint, outcome).inc()
        WECHAT_LATENCY.labels(endpoint).observe(seconds)

    def dedup_hit(self) -> None:
        DEDUP_HITS.inc()

    def refused(self, kind: str) -> None:
        REFUSALS.labels(kind if kind in REFUSAL_KINDS else "other").inc()

    def scan_step(self, step: str) -> None:
        from server.scanlogin import STEPS

        SCAN_STEPS.labels(step if step in STEPS else "other").inc()

    def user_writes_pending(self, count: int) -> None:
        USER_WRITES_PENDING.set(count)

    def user_write_dropped(self) -> None:
        USER_WRITES_DROPPED.inc()


def exposition() -> tuple[bytes, str]:
    """The text format of every process's metrics (one process, or all of them when forked)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
