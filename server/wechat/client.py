"""Async client for WeChat's sns/ (web authorization) and cgi-bin/ APIs over one aiohttp session."""

import asyncio
import json
import logging

import aiohttp

log = logging.getLogger("wxauth.wechat")

# /sns/auth answers these for a token that is simply no good (docs/wechat-protocol.md §6.7, §7):
# invalid/not-latest credential, invalid openid, invalid token, expired, password changed.
_INVALID_WEB_TOKEN = frozenset({40001, 40003, 40014, 42001, 42007})


class WeChatError(Exception):
    """WeChat answered with a non-zero errcode (docs/wechat-protocol.md §7)."""

    def __init__(self, endpoint: str, errcode: int, errmsg: str):
        super().__init__(f"{endpoint}: errcode {errcode} ({errmsg})")
        self.endpoint = endpoint
        self.errcode = errcode
        self.errmsg = errmsg


class WeChatUnavailable(Exception):
    """No usable answer: reason is "timeout", "network" or "bad_response"."""

    def __init__(self, endpoint: str, reason: str, detail: str = ""):
        super().__init__(f"{endpoint}: {reason}" + (f" ({detail})" if detail else ""))
        self.endpoint = endpoint
        self.reason = reason
        self.detail = detail


class _ConnectionFailed(Exception):
    """Internal: the connection failed before any response arrived."""

    def __init__(self, detail: str, before_send: bool):
        super().__init__(detail)
        self.detail = detail
        self.before_send = before_send


class WeChatClient:
    """One instance per process; every call goes through `_fetch`."""

    def __init__(self, session: aiohttp.ClientSession, api_base: str, appid: str, secret: str,
                 *, timeout: float = 4.5, on_call=None):
        self._session = session
        # aiohttp quietly re-sends a GET once when the connection drops (client.py,
        # _retry_connection); with our own retry that would be three attempts. aiohttp's
        # test_utils switches it off the same way; test_gives_up_after_two_dropped_connections
        # notices if a new aiohttp renames it.
        if hasattr(session, "_retry_connection"):
            session._retry_connection = False
        self._api_base = api_base.rstrip("/")
        self._appid = appid
        self._secret = secret
        # The whole budget of one call, retry included: a follower's request must be
        # answered within WeChat's 5 s (docs/wechat-protocol.md §5.1), so no call may outlive it.
        self._timeout = timeout
        self._on_call = on_call

    # -- web authorization (docs/wechat-protocol.md §6) --------------------------------------

    async def exchange_code(self, code: str) -> dict:
        # Parameter order as documented in §6.4.
        return await self._fetch("GET", "/sns/oauth2/access_token", params={
            "appid": self._appid, "secret": self._secret, "code": code,
            "grant_type": "authorization_code"})

    async def refresh_web_token(self, refresh_token: str) -> dict:
        return await self._fetch("GET", "/sns/oauth2/refresh_token", params={
            "appid": self._appid, "grant_type": "refresh_token",
            "refresh_token": refresh_token})

    async def userinfo(self, access_token: str, openid: str, lang: str = "zh_CN") -> dict:
        return await self._fetch("GET", "/sns/userinfo", params={
            "access_token": access_token, "openid": openid, "lang": lang})

    async def check_web_token(self, access_token: str, openid: str) -> bool:
        try:
            await self._fetch("GET", "/sns/auth", params={
                "access_token": access_token, "openid": openid})
        except WeChatError as exc:
            if exc.errcode in _INVALID_WEB_TOKEN:
                return False
            raise  # -1 "system busy" and friends say nothing about the token
        return True

    # -- global access_token (docs/wechat-protocol.md §8.1, §8.2) ------------------------------

    async def stable_token(self, force_refresh: bool = False) -> dict:
        # §8.2: JSON body only. Retrying a forced refresh after a dropped connection could
        # burn two of its 20 daily uses, so only a refused connection is retried then.
        return await self._fetch("POST", "/cgi-bin/stable_token", body={
            "grant_type": "client_credential", "appid": self._appid,
            "secret": self._secret, "force_refresh": bool(force_refresh)},
            idempotent=not force_refresh)

    # -- menus and QR codes (docs/wechat-protocol.md §8.3, §12.1) --------------

    async def menu_create(self, access_token: str, menu: dict) -> None:
        await self._fetch("POST", "/cgi-bin/menu/create",
                          params={"access_token": access_token}, body=menu)

    async def qrcode_create_permanent(self, access_token: str, scene_str: str) -> dict:
        """A permanent parametric QR code for `scene_str` (docs/wechat-protocol.md §12.1):
        {"ticket", "url"}; `url` is the text the code encodes."""
        body = {"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": scene_str}}}
        return await self._fetch("POST", "/cgi-bin/qrcode/create", params={"access_token": access_token}, body=body)

    async def menu_get(self, access_token: str) -> dict:
        return await self._fetch("GET", "/cgi-bin/menu/get",
                                 params={"access_token": access_token})

    # -- template messages (docs/wechat-protocol.md §13) --------------------------------------------

    async def templates(self, access_token: str) -> list[dict]:
        """The account's templates with their content (§13.5)."""
        answer = await self._fetch("GET", "/cgi-bin/template/get_all_private_template",
                                   params={"access_token": access_token})
        return answer.get("template_list") or []

    async def template_send(self, access_token: str, message: dict) -> int:
        """Sends one template message (§13.2) and returns its msgid. Retried after a dropped
        connection only because every message carries a client_msg_id: WeChat then sends it once."""
        answer = await self._fetch("POST", "/cgi-bin/message/template/send", params={"access_token": access_token},
                                   body=message, idempotent=bool(message.get("client_msg_id")))
        return int(answer.get("msgid") or 0)

    # -- followers (docs/wechat-protocol.md §14) ----------------------------------------------------

    async def user_list(self, access_token: str, next_openid: str = "") -> dict:
        """One page of up to 10,000 follower openids after `next_openid` (§14.1)."""
        params = {"access_token": access_token}
        if next_openid:
            params["next_openid"] = next_openid
        return await self._fetch("GET", "/cgi-bin/user/get", params=params)

    async def user_info_batch(self, access_token: str, openids: list[str]) -> list[dict]:
        """§14.2 fields of up to 100 followers (§14.3); a read, so a retry is harmless."""
        body = {"user_list": [{"openid": openid, "lang": "zh_CN"} for openid in openids]}
        answer = await self._fetch("POST", "/cgi-bin/user/info/batchget", params={"access_token": access_token},
                                   body=body)
        return answer.get("user_info_list") or []

    # -- JS-SDK (docs/wechat-protocol.md §9, §15.2) ----------------------------------------------

    async def jsapi_ticket(self, access_token: str) -> dict:
        """{"ticket", "expires_in"}: the ticket that signs wx.config. `access_token` must be the
        global token: a web token is refused with 40001 (§15.2), and type=wx_card is another ticket."""
        return await self._fetch("GET", "/cgi-bin/ticket/getticket",
                                 params={"access_token": access_token, "type": "jsapi"})

    # -- the one place that talks HTTP ---------------------------------------------------

    async def _fetch(self, method: str, endpoint: str, *, params=None, body=None,
                     idempotent: bool = True) -> dict:
        """Call `endpoint`, retrying once if the connection failed before any response.

        Never logs the URL's query string or the body: appid, secret, code and tokens ride
        there (the oauthenticator habit, STYLE.md).
        """
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + self._timeout
        data = None
        headers = None
        if body is not None:
            # §8.3 / §7 40033: WeChat refuses \uXXXX escapes; send raw UTF-8.
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
            headers = {"Content-Type": "application/json; charset=utf-8"}
        outcome = "network"
        try:
            for attempt in (1, 2):
                try:
                    status, raw = await self._attempt(method, endpoint, params, data,
                                                      headers, deadline)
                    break
                except _ConnectionFailed as exc:
                    can_retry = (attempt == 1 and (idempotent or exc.before_send)
                                 and loop.time() < deadline)
                    if not can_retry:
                        raise WeChatUnavailable(endpoint, "network", exc.detail) from None
                    log.info("%s connection failed (%s), retrying once", endpoint, exc.detail)
            answer = self._parse(endpoint, status, raw)
            errcode = answer.get("errcode", 0)
            if errcode:
                outcome = f"errcode:{errcode}"
                raise WeChatError(endpoint, errcode, str(answer.get("errmsg", ""))[:200])
            outcome = "ok"
            return answer
        except WeChatUnavailable as exc:
            outcome = exc.reason
            log.warning("%s unavailable: %s%s after %.3fs", endpoint, exc.reason,
                        f" ({exc.detail})" if exc.detail else "", loop.time() - started)
            raise
        except WeChatError as exc:
            log.warning("%s errcode %s (%s) after %.3fs", endpoint, exc.errcode, exc.errmsg,
                        loop.time() - started)
            raise
        finally:
            elapsed = loop.time() - started
            if outcome == "ok":
                log.debug("%s ok in %.3fs", endpoint, elapsed)
            self._report(endpoint, outcome, elapsed)

    async def _attempt(self, method, endpoint, params, data, headers, deadline):
        """One HTTP exchange within the call's deadline -> (status, body bytes)."""
        try:
            async with asyncio.timeout_at(deadline):
                async with self._session.request(
                        method, self._api_base + endpoint, params=params, data=data,
                        headers=headers, allow_redirects=False) as resp:
                    return resp.status, await resp.read()
        except TimeoutError:
            # Also aiohttp's own connect/read timeouts. Never retried: the budget is spent.
            raise WeChatUnavailable(endpoint, "timeout") from None
        except aiohttp.ClientConnectorError as exc:
            # Refused / unreachable: nothing was sent, so a retry is always safe.
            raise _ConnectionFailed(_describe(exc), before_send=True) from None
        except aiohttp.ClientConnectionError as exc:
            # Dropped or reset before a response (often a stale pooled keep-alive socket).
            raise _ConnectionFailed(_describe(exc), before_send=False) from None
        except aiohttp.ClientPayloadError as exc:
            raise WeChatUnavailable(endpoint, "bad_response", _describe(exc)) from None
        except aiohttp.ClientResponseError as exc:
            # Malformed status line or headers. Its str() would carry the URL with the query.
            raise WeChatUnavailable(endpoint, "bad_response", f"HTTP {exc.status}") from None

    @staticmethod
    def _parse(endpoint: str, status: int, raw: bytes) -> dict:
        if status >= 500:
            raise WeChatUnavailable(endpoint, "bad_response", f"HTTP {status}")
        # WeChat sometimes labels JSON as text/plain, so the content type is ignored.
        try:
            answer = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise WeChatUnavailable(endpoint, "bad_response",
                                    f"HTTP {status}, not JSON") from None
        if not isinstance(answer, dict):
            raise WeChatUnavailable(endpoint, "bad_response", f"HTTP {status}, not an object")
        errcode = answer.get("errcode", 0)
        if not isinstance(errcode, int) or isinstance(errcode, bool):
            raise WeChatUnavailable(endpoint, "bad_response", "errcode is not an integer")
        if status != 200 and not errcode:
            raise WeChatUnavailable(endpoint, "bad_response", f"HTTP {status}")
        return answer

    def _report(self, endpoint: str, outcome: str, seconds: float) -> None:
        if self._on_call is None:
            return
        try:
            self._on_call(endpoint, outcome, seconds)
        except Exception:  # metrics must never break a follower's request
            log.exception("on_call hook failed for %s", endpoint)


def _describe(exc: BaseException) -> str:
    """A loggable description of a connection error: class and OS error, never a URL."""
    os_error = getattr(exc, "os_error", None)
    if os_error is not None and getattr(os_error, "strerror", None):
        return f"{type(exc).__name__}: {os_error.strerror}"
    return type(exc).__name__
