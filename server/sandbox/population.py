"""The stand-in's follower list as /cgi-bin/user/get and batchget see it: the demo followers, then a synthetic crowd."""

from __future__ import annotations

import re

PAGE = 10_000  # openids per /cgi-bin/user/get page (docs/wechat-protocol.md §14.1)
BATCH = 100    # entries per /cgi-bin/user/info/batchget call (§14.3)
_CROWD = re.compile(r"^oCrowd(\d{22})$")
_SCENES = ("ADD_SCENE_QR_CODE", "ADD_SCENE_SEARCH", "ADD_SCENE_PROFILE_CARD", "ADD_SCENE_OTHERS")
SUBSCRIBE_EPOCH = 1_700_000_000


def crowd_openid(i: int) -> str:
    """The i-th synthetic follower: 28 characters like a real openid, generated, never stored."""
    return f"oCrowd{i:022d}"


class Population:
    """Pages and details of every follower: the sandbox's own (subscribed ones) and `size` more.

    The crowd exists only as numbers, so a benchmark can sync 100,000 followers without the
    stand-in holding them.
    """

    def __init__(self, sandbox, size: int = 0):
        self.sandbox = sandbox
        self.size = size
        self.page_size = PAGE  # tests make pages smaller to see several of them

    def _own(self) -> list:
        return [f for f in self.sandbox.followers.values() if f.subscribed and not f.is_snapshotuser]

    def total(self) -> int:
        return len(self._own()) + self.size

    def page(self, next_openid: str) -> dict:
        """/cgi-bin/user/get's answer after `next_openid` ("" for the first page)."""
        own = self._own()
        start = 0
        if next_openid:
            ids = [f.openid for f in own]
            crowd = _CROWD.match(next_openid)
            if next_openid in ids:
                start = ids.index(next_openid) + 1
            elif crowd:
                start = len(own) + int(crowd.group(1)) + 1
            else:
                return {"errcode": 40003}
        end = min(start + self.page_size, len(own) + self.size)
        openids = [own[i].openid if i < len(own) else crowd_openid(i - len(own)) for i in range(start, end)]
        if not openids:
            # §14.1 in practice: the end is a page with count 0 and no `data`.
            return {"total": self.total(), "count": 0, "next_openid": ""}
        return {"total": self.total(), "count": len(openids), "data": {"openid": openids},
                "next_openid": openids[-1]}

    def info(self, openid: str) -> dict | None:
        """One follower's §14.2 fields (nickname and avatar no longer come, §14.2); None if unknown."""
        follower = self.sandbox.follower(openid)
        if follower is not None:
            if not follower.subscribed:
                return {"subscribe": 0, "openid": openid}
            return {"subscribe": 1, "openid": openid, "nickname": "", "headimgurl": "", "language": "zh_CN",
                    "subscribe_time": SUBSCRIBE_EPOCH, "remark": "", "groupid": 0, "tagid_list": [2],
                    "subscribe_scene": "ADD_SCENE_QR_CODE", "qr_scene": 0, "qr_scene_str": "",
                    **({"unionid": follower.unionid} if follower.unionid else {})}
        crowd = _CROWD.match(openid)
        if not crowd or int(crowd.group(1)) >= self.size:
            return None
        i = int(crowd.group(1))
        return {"subscribe": 1, "openid": openid, "nickname": "", "headimgurl": "", "language": "zh_CN",
                "subscribe_time": SUBSCRIBE_EPOCH + i, "remark": "", "groupid": 0,
                "tagid_list": [100 + i % 3] if i % 2 else [], "subscribe_scene": _SCENES[i % len(_SCENES)],
                "qr_scene": 0, "qr_scene_str": "", "unionid": f"uCrowd{i:022d}"}
