"""Parse WeChat push XML (docs/wechat-protocol.md §4) safely into typed, frozen message objects."""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable
from xml.parsers import expat

import xmltodict

MAX_BODY = 64 * 1024

# Characters XML 1.0 forbids (§2.2 of the XML spec): C0 controls other than TAB, LF, CR,
# lone surrogates, U+FFFE and U+FFFF. Followers do type such characters, and expat refuses
# the whole document for one of them, even inside CDATA, so they are removed first.
_FORBIDDEN_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

# A DTD is the door to billion-laughs and external-entity attacks (CWE-776, CWE-611); WeChat
# never sends one. CDATA sections are skipped so a follower who types "<!DOCTYPE" still gets
# a reply; expat refuses any DTD the pre-check might miss (see _HardenedExpat).
_CDATA_SECTION = re.compile(r"<!\[CDATA\[.*?\]\]>", re.DOTALL)
_DTD_MARKUP = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)

_DIGITS = re.compile(r"[0-9]{1,19}")
_MAX_DEDUP_KEY = 200


class XmlError(ValueError):
    """A push body that is not a WeChat message; `.reason` is short and safe to log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def strip_invalid_xml_chars(text: str) -> str:
    """Remove the characters XML 1.0 forbids, so the text can go into (or come out of) XML."""
    return _FORBIDDEN_XML_CHARS.sub("", text)


def _refuse_dtd(*_args: object) -> None:
    raise XmlError("doctype")


class _HardenedExpat:
    """The expat module as xmltodict sees it, with every DOCTYPE refused at its first byte."""

    ExpatError = expat.ExpatError

    @staticmethod
    def ParserCreate(*args: Any, **kwargs: Any) -> Any:  # noqa: N802 - expat's own name
        parser = expat.ParserCreate(*args, **kwargs)
        # Second line of defence behind the pre-check: stop at the DTD itself, so no entity
        # is ever declared, expanded or fetched.
        parser.StartDoctypeDeclHandler = _refuse_dtd
        parser.EntityDeclHandler = _refuse_dtd
        return parser


def _decode(body: bytes | str) -> str:
    if isinstance(body, str):
        return body
    # Keep going on invalid UTF-8: a follower's text must still get a reply (DESIGN, Flows 2).
    return body.decode("utf-8", errors="replace")


def _check_no_dtd(text: str) -> None:
    if _DTD_MARKUP.search(_CDATA_SECTION.sub("", text)):
        raise XmlError("doctype")


def _parse_document(text: str) -> Any:
    try:
        return xmltodict.parse(text, expat=_HardenedExpat, disable_entities=True)
    except XmlError:
        raise
    except (expat.ExpatError, ValueError) as exc:
        raise XmlError("malformed") from exc


def _flatten(root: Any) -> dict[str, Any]:
    """The <xml> children as {name: str | nested dict}; empty elements become ""."""
    if root is None:
        return {}
    if not isinstance(root, dict):
        raise XmlError("no fields")
    fields: dict[str, Any] = {}
    for name, value in root.items():
        if name.startswith(("@", "#")):  # root attributes and stray text are not fields
            continue
        if isinstance(value, list):
            # One field twice is not WeChat; refusing avoids guessing which one is meant.
            raise XmlError(f"repeated {name}"[:64])
        fields[name] = "" if value is None else value
    return fields


def parse_xml(body: bytes | str) -> dict[str, Any]:
    """Parse a WeChat `<xml>` body into a flat dict of str (nested elements stay dicts).

    Leading and trailing whitespace of each value is dropped (xmltodict's default, as wechatpy).
    Raises XmlError for oversized, DTD-bearing, malformed or non-`<xml>` documents.
    """
    size = len(body) if isinstance(body, bytes) else len(body.encode("utf-8", "surrogatepass"))
    if size > MAX_BODY:
        raise XmlError("too large")
    text = strip_invalid_xml_chars(_decode(body))
    _check_no_dtd(text)
    document = _parse_document(text)
    if not isinstance(document, dict) or list(document) != ["xml"]:
        raise XmlError("root not xml")
    return _flatten(document["xml"])


# The safe-mode envelope exactly as WeChat sends it (§3.6): ToUserName and Encrypt, nothing else.
# Matching it needs no XML parser, and the pattern admits no DTD, entity or other markup, so
# the hardened parser is only needed for anything else (compatible mode, odd whitespace).
_SAFE_ENVELOPE = re.compile(
    rb"\A\s*<xml>\s*<ToUserName><!\[CDATA\[([A-Za-z0-9_-]{1,64})\]\]></ToUserName>\s*"
    rb"<Encrypt><!\[CDATA\[([A-Za-z0-9+/=]{1,87400})\]\]></Encrypt>\s*</xml>\s*\Z"
)


def parse_envelope(body: bytes) -> dict[str, Any]:
    """The fields of an encrypted push's outer `<xml>`: a fast path for safe mode, else parse_xml."""
    if len(body) <= MAX_BODY:
        match = _SAFE_ENVELOPE.match(body)
        if match:
            return {"ToUserName": match.group(1).decode("ascii"), "Encrypt": match.group(2).decode("ascii")}
    return parse_xml(body)


# --- typed messages (§4) -------------------------------------------------------------------


def _bounded_key(key: str) -> str:
    # Dedup keys become MongoDB _id values; an attacker-sized EventKey must not make them huge.
    if len(key) <= _MAX_DEDUP_KEY:
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, kw_only=True)
class Message:
    """Fields every push carries (§4.1); `raw` is the parsed dict, for anything not typed here."""

    to_user: str
    from_user: str
    create_time: int
    msg_type: str
    raw: dict = field(default_factory=dict, compare=False, hash=False, repr=False)

    @property
    def dedup_key(self) -> str:
        """The key WeChat retries share (§4.4): MsgId, or sender + time + type without one."""
        msg_id = _text(self.raw, "MsgId")
        key = msg_id or f"{self.from_user}:{self.create_time}:{self.msg_type}"
        return _bounded_key(key)


@dataclass(frozen=True, kw_only=True)
class OrdinaryMessage(Message):
    """A follower's message (§4.2); all of them carry a 64-bit MsgId, kept as its digits."""

    msg_id: str = ""


@dataclass(frozen=True, kw_only=True)
class TextMessage(OrdinaryMessage):
    content: str


@dataclass(frozen=True, kw_only=True)
class ImageMessage(OrdinaryMessage):
    pic_url: str
    media_id: str


@dataclass(frozen=True, kw_only=True)
class VoiceMessage(OrdinaryMessage):
    media_id: str
    format: str
    # §4.2: present only when voice recognition is enabled for the account.
    recognition: str | None = None


@dataclass(frozen=True, kw_only=True)
class VideoMessage(OrdinaryMessage):
    media_id: str
    thumb_media_id: str


@dataclass(frozen=True, kw_only=True)
class ShortVideoMessage(OrdinaryMessage):
    # Not a VideoMessage subclass, so isinstance() routing never confuses the two.
    media_id: str
    thumb_media_id: str


@dataclass(frozen=True, kw_only=True)
class LocationMessage(OrdinaryMessage):
    latitude: float
    longitude: float
    scale: int
    label: str


@dataclass(frozen=True, kw_only=True)
class LinkMessage(OrdinaryMessage):
    title: str
    description: str
    url: str


@dataclass(frozen=True, kw_only=True)
class UnknownMessage(OrdinaryMessage):
    """A MsgType this server does not know (e.g. miniprogrampage); never an error."""


@dataclass(frozen=True, kw_only=True)
class Event(Message):
    """An event push (§4.3): `event` as sent, `event_key` the raw EventKey ("" when absent)."""

    event: str
    event_key: str = ""

    @property
    def dedup_key(self) -> str:
        # §4.4 says FromUserName + CreateTime for events; Event and EventKey are added so two
        # different events in the same second (a follow and a click) are not merged.
        parts = (self.from_user, str(self.create_time), self.event, self.event_key)
        return _bounded_key(":".join(parts))


@dataclass(frozen=True, kw_only=True)
class SubscribeEvent(Event):
    # §4.3: a follow through a parameterised QR code has EventKey "qrscene_<scene>" and a Ticket.
    scene: str | None = None
    ticket: str | None = None


@dataclass(frozen=True, kw_only=True)
class UnsubscribeEvent(Event):
    pass


@dataclass(frozen=True, kw_only=True)
class ScanEvent(Event):
    scene: str | None = None
    ticket: str | None = None


@dataclass(frozen=True, kw_only=True)
class LocationEvent(Event):
    latitude: float
    longitude: float
    precision: float


@dataclass(frozen=True, kw_only=True)
class ClickEvent(Event):
    key: str


@dataclass(frozen=True, kw_only=True)
class ScanCodeWaitEvent(Event):
    """A `scancode_waitmsg` menu button (§4.3): WeChat shows "消息接收中" until the reply comes."""

    key: str
    scan_type: str = ""
    scan_result: str = ""


@dataclass(frozen=True, kw_only=True)
class ViewEvent(Event):
    url: str
    menu_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class ViewMiniprogramEvent(Event):
    pagepath: str
    menu_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class TemplateSendJobFinishEvent(Event):
    msg_id: str
    status: str

    @property
    def dedup_key(self) -> str:
        # These carry no EventKey but a template MsgID; two template messages finishing for one
        # follower in the same second are different events.
        parts = (self.from_user, str(self.create_time), self.event, self.msg_id)
        return _bounded_key(":".join(parts))


@dataclass(frozen=True, kw_only=True)
class UnknownEvent(Event):
    """An Event this server does not know; never an error."""


# --- field readers --------------------------------------------------------------------------


def _text(fields: dict, name: str) -> str:
    """The field as str: "" when absent or empty; the text of an element that had attributes."""
    value = fields.get(name)
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("#text"), str):
        return value["#text"]
    return ""


def _optional(fields: dict, name: str) -> str | None:
    return _text(fields, name) or None


def _required(fields: dict, name: str) -> str:
    value = _text(fields, name)
    if not value:
        raise XmlError(f"missing {name}")
    return value


def _int(fields: dict, name: str, default: int | None = None) -> int:
    value = _text(fields, name).strip()
    if not value and default is not None:
        return default
    # Plain ASCII digits only: int() would also take "-1", "1_0" and non-ASCII digits.
    if not _DIGITS.fullmatch(value):
        raise XmlError(f"missing {name}" if not value else f"bad {name}")
    return int(value)


def _float(fields: dict, name: str) -> float:
    value = _text(fields, name).strip()
    if not value:
        raise XmlError(f"missing {name}")
    try:
        number = float(value)
    except ValueError:
        raise XmlError(f"bad {name}") from None
    if not math.isfinite(number):
        raise XmlError(f"bad {name}")
    return number


def _common(fields: dict) -> dict[str, Any]:
    return {
        "to_user": _required(fields, "ToUserName"),
        "from_user": _required(fields, "FromUserName"),
        "create_time": _int(fields, "CreateTime"),
        "msg_type": _required(fields, "MsgType"),
        "raw": dict(fields),
    }


# --- builders, one per MsgType / Event (§4.2, §4.3) -----------------------------------------

_Builder = Callable[[dict, dict], Message]


def _ordinary(fields: dict) -> dict[str, Any]:
    msg_id = _text(fields, "MsgId").strip()
    # §4.2: a 64-bit number. ASCII digits only, as for every number we read.
    if msg_id and not _DIGITS.fullmatch(msg_id):
        raise XmlError("bad MsgId")
    return {**_common(fields), "msg_id": msg_id}


def _text_message(fields: dict, base: dict) -> Message:
    return TextMessage(**base, content=_text(fields, "Content"))


def _image(fields: dict, base: dict) -> Message:
    return ImageMessage(**base, pic_url=_text(fields, "PicUrl"), media_id=_text(fields, "MediaId"))


def _voice(fields: dict, base: dict) -> Message:
    return VoiceMessage(
        **base,
        media_id=_text(fields, "MediaId"),
        format=_text(fields, "Format"),
        recognition=_optional(fields, "Recognition"),
    )


def _video(fields: dict, base: dict) -> Message:
    media = {"media_id": _text(fields, "MediaId"), "thumb_media_id": _text(fields, "ThumbMediaId")}
    return VideoMessage(**base, **media)


def _short_video(fields: dict, base: dict) -> Message:
    media = {"media_id": _text(fields, "MediaId"), "thumb_media_id": _text(fields, "ThumbMediaId")}
    return ShortVideoMessage(**base, **media)


def _location(fields: dict, base: dict) -> Message:
    # §4.2: Location_X is the latitude, Location_Y the longitude.
    return LocationMessage(
        **base,
        latitude=_float(fields, "Location_X"),
        longitude=_float(fields, "Location_Y"),
        scale=_int(fields, "Scale", default=0),
        label=_text(fields, "Label"),
    )


def _link(fields: dict, base: dict) -> Message:
    return LinkMessage(
        **base,
        title=_text(fields, "Title"),
        description=_text(fields, "Description"),
        url=_text(fields, "Url"),
    )


_MESSAGE_BUILDERS: dict[str, _Builder] = {
    "text": _text_message,
    "image": _image,
    "voice": _voice,
    "video": _video,
    "shortvideo": _short_video,
    "location": _location,
    "link": _link,
}

_QRSCENE_PREFIX = "qrscene_"


def _subscribe(fields: dict, base: dict) -> Message:
    key = base["event_key"]
    scene = key[len(_QRSCENE_PREFIX):] if key.startswith(_QRSCENE_PREFIX) else ""
    return SubscribeEvent(**base, scene=scene or None, ticket=_optional(fields, "Ticket"))


def _unsubscribe(fields: dict, base: dict) -> Message:
    return UnsubscribeEvent(**base)


def _scan(fields: dict, base: dict) -> Message:
    # §4.3: for SCAN the EventKey is the scene value itself, without the qrscene_ prefix.
    return ScanEvent(**base, scene=base["event_key"] or None, ticket=_optional(fields, "Ticket"))


def _location_event(fields: dict, base: dict) -> Message:
    return LocationEvent(
        **base,
        latitude=_float(fields, "Latitude"),
        longitude=_float(fields, "Longitude"),
        precision=_float(fields, "Precision"),
    )


def _click(fields: dict, base: dict) -> Message:
    return ClickEvent(**base, key=base["event_key"])


def _scancode_wait(fields: dict, base: dict) -> Message:
    info = fields.get("ScanCodeInfo")
    info = info if isinstance(info, dict) else {}
    return ScanCodeWaitEvent(**base, key=base["event_key"], scan_type=_text(info, "ScanType"),
                             scan_result=_text(info, "ScanResult"))


def _view(fields: dict, base: dict) -> Message:
    return ViewEvent(**base, url=base["event_key"], menu_id=_optional(fields, "MenuId"))


def _view_miniprogram(fields: dict, base: dict) -> Message:
    return ViewMiniprogramEvent(
        **base, pagepath=base["event_key"], menu_id=_optional(fields, "MenuId")
    )


def _template_finished(fields: dict, base: dict) -> Message:
    # §4.3: this event spells it "MsgID" (capital D); accept "MsgId" too.
    msg_id = _text(fields, "MsgID") or _text(fields, "MsgId")
    return TemplateSendJobFinishEvent(**base, msg_id=msg_id, status=_text(fields, "Status"))


# Keys are lower case: §4.3 names are case-sensitive as sent, but matching tolerates case.
_EVENT_BUILDERS: dict[str, _Builder] = {
    "subscribe": _subscribe,
    "unsubscribe": _unsubscribe,
    "scan": _scan,
    "location": _location_event,
    "click": _click,
    "scancode_waitmsg": _scancode_wait,
    "view": _view,
    "view_miniprogram": _view_miniprogram,
    "templatesendjobfinish": _template_finished,
}


def _event(fields: dict) -> Message:
    base = {
        **_common(fields),
        "event": _required(fields, "Event"),
        "event_key": _text(fields, "EventKey"),
    }
    builder = _EVENT_BUILDERS.get(base["event"].lower())
    if builder is None:
        return UnknownEvent(**base)
    return builder(fields, base)


def parse_message(fields: dict) -> Message:
    """The typed message for a parse_xml() dict; XmlError only for missing or bad fields."""
    msg_type = _required(fields, "MsgType")
    if msg_type.lower() == "event":
        return _event(fields)
    base = _ordinary(fields)
    builder = _MESSAGE_BUILDERS.get(msg_type.lower())
    if builder is None:
        return UnknownMessage(**base)
    return builder(fields, base)
