"""The JS-SDK's jsapi_ticket under the access_token's lease, and the wx.config fields it signs for a page."""

from __future__ import annotations

from urllib.parse import urlsplit

from server.leased import LeasedCredential, answer_value
from server.redirects import BadTarget, check_target
from server.wechat.signature import jsapi_signature, random_nonce

ENDPOINT = "/cgi-bin/ticket/getticket"


class TicketService(LeasedCredential):
    """One jsapi_ticket per AppID, cached for its 7200 s (docs/wechat-protocol.md §9, §15.2: the
    ticket API has a low quota), in the `tokens` collection as document f"{appid}:jsapi".

    The ticket is fetched with the global access_token through TokenService.call, so a token that
    WeChat refuses (40001, often one another caller rotated, §15.2) is renewed and the fetch retried.
    """

    name = "jsapi_ticket"
    endpoint = ENDPOINT

    def __init__(self, store, wechat, tokens, appid: str, **options):
        super().__init__(store, f"{appid}:jsapi", **options)
        self.wechat = wechat
        self.tokens = tokens
        self.appid = appid

    async def fetch(self) -> tuple[str, float]:
        return answer_value(await self.tokens.call(self.wechat.jsapi_ticket), "ticket", ENDPOINT)

    async def ticket(self) -> str:
        """A valid jsapi_ticket: from memory, else from MongoDB, else fetched under the lease."""
        return await self.value()

    async def js_config(self, url: str) -> dict:
        """The fields of wx.config for the page at `url` (§9 step 4), signed for `url` without its
        fragment. The caller has checked that `url` is one of ours: a signature is only worth as
        much as the JS safe domain it is used on (§15.4), but we do not sign for other sites."""
        page = url.split("#", 1)[0]
        timestamp, nonce = int(self.clock()), random_nonce(16)
        # The timestamp goes into string1 as its decimal digits, the same ones wx.config gets.
        return {"appId": self.appid, "timestamp": timestamp, "nonceStr": nonce,
                "signature": jsapi_signature(await self.ticket(), nonce, str(timestamp), page), "url": page}


def signable_url(url: str | None, app_host: str, allowed_hosts: tuple[str, ...] = ()) -> str:
    """`url` without its fragment, if it is an absolute http(s) URL of this site (WX_APP_HOST, same
    scheme and port) or of a host in WX_ALLOWED_HOSTS; raises BadTarget saying why otherwise.

    The same validator as redirect targets (server/redirects.py: no userinfo, no '//' tricks, no
    encoded backslashes, CWE-601), but only absolute URLs: WeChat signs what location.href holds.
    """
    page = (url or "").split("#", 1)[0]
    if not page.startswith(("http://", "https://")):
        raise BadTarget("must be the page's full http(s) URL (location.href without '#')")
    check_target(page, allowed_hosts, own_host=app_host)
    own = urlsplit(app_host)
    parts = urlsplit(page)
    if parts.netloc.lower() == own.netloc.lower() and parts.scheme != own.scheme:
        raise BadTarget(f"this site is {own.scheme}://, not {parts.scheme}://")
    return page
