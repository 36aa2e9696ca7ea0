"""Inbound XML parsing (docs/wechat-protocol.md §4), hostile bodies, and passive replies (§5)."""

import dataclasses
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.wechat import messages
from server.wechat.messages import (
    MAX_BODY,
    ClickEvent,
    Event,
    ImageMessage,
    LinkMessage,
    LocationEvent,
    LocationMessage,
    ScanEvent,
    ShortVideoMessage,
    SubscribeEvent,
    TemplateSendJobFinishEvent,
    TextMessage,
    UnknownEvent,
    UnknownMessage,
    UnsubscribeEvent,
    VideoMessage,
    ViewEvent,
    ViewMiniprogramEvent,
    VoiceMessage,
    XmlError,
    parse_message,
    parse_xml,
)
from server.wechat.replies import SUCCESS, cdata, text_reply

HEAD = (
    "<ToUserName><![CDATA[gh_123456789abc]]></ToUserName>"
    "<FromUserName><![CDATA[oUSER_OPENID]]></FromUserName>"
    "<CreateTime>1700000000</CreateTime>"
)


def body(inner: str, head: str = HEAD) -> bytes:
    return f"<xml>{head}{inner}</xml>".encode("utf-8")


def message(inner: str):
    return parse_message(parse_xml(body(inner)))


def text_body(content: str) -> bytes:
    return body(f"<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content><MsgId>1</MsgId>")


def event(name: str, extra: str = "") -> str:
    return f"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{name}]]></Event>{extra}"


# --- parse_xml ------------------------------------------------------------------------------


def test_cdata_and_bare_values_both_parse_to_strings():
    fields = parse_xml(body("<MsgType><![CDATA[text]]></MsgType><MsgId>42</MsgId>"))
    assert fields == {
        "ToUserName": "gh_123456789abc",
        "FromUserName": "oUSER_OPENID",
        "CreateTime": "1700000000",
        "MsgType": "text",
        "MsgId": "42",
    }


def test_empty_elements_become_empty_strings():
    fields = parse_xml(b"<xml><EventKey></EventKey><Ticket><![CDATA[]]></Ticket><Label/></xml>")
    assert fields == {"EventKey": "", "Ticket": "", "Label": ""}


def test_nested_elements_stay_dicts():
    fields = parse_xml(
        body(
            event("scancode_push")
            + "<ScanCodeInfo><ScanType><![CDATA[qrcode]]></ScanType>"
            "<ScanResult><![CDATA[1]]></ScanResult></ScanCodeInfo>"
        )
    )
    assert fields["ScanCodeInfo"] == {"ScanType": "qrcode", "ScanResult": "1"}


def test_xml_declaration_and_whitespace_between_elements_are_accepted():
    raw = b'<?xml version="1.0" encoding="utf-8"?>\n<xml>\n  <MsgType>text</MsgType>\n</xml>\n'
    assert parse_xml(raw) == {"MsgType": "text"}


def test_follower_text_mentioning_doctype_inside_cdata_still_parses():
    fields = parse_xml(text_body('<!DOCTYPE html><!ENTITY x "y">'))
    assert fields["Content"] == '<!DOCTYPE html><!ENTITY x "y">'


BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b"]><xml><Content>&lol9;</Content></xml>"
)

DTD_BODIES = [
    pytest.param(b'<!DOCTYPE xml><xml><A>1</A></xml>', id="plain-doctype"),
    pytest.param(b'<!doctype xml><xml><A>1</A></xml>', id="lower-case-doctype"),
    pytest.param(
        b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b"<xml><Content>&xxe;</Content></xml>",
        id="external-entity",
    ),
    pytest.param(
        b'<!DOCTYPE xml SYSTEM "http://127.0.0.1:1/evil.dtd"><xml><A>1</A></xml>', id="external-dtd"
    ),
    pytest.param(
        b'<!DOCTYPE xml [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><xml/>', id="parameter-entity"
    ),
    pytest.param(BILLION_LAUGHS, id="billion-laughs"),
    pytest.param(b'<!DOCTYPE xml [<!ENTITY a "b">]><xml><A>&a;</A></xml>', id="internal-entity"),
    pytest.param(b"<!  DOCTYPE xml><xml/>", id="spaced-doctype"),
]


@pytest.mark.parametrize("raw", DTD_BODIES)
def test_dtd_is_refused_before_parsing(raw, monkeypatch):
    def must_not_parse(*_args, **_kwargs):
        raise AssertionError("a DTD reached the XML parser")

    monkeypatch.setattr(messages.xmltodict, "parse", must_not_parse)
    with pytest.raises(XmlError) as excinfo:
        parse_xml(raw)
    assert excinfo.value.reason == "doctype"


def test_billion_laughs_is_refused_fast():
    started = time.perf_counter()
    with pytest.raises(XmlError):
        parse_xml(BILLION_LAUGHS)
    assert time.perf_counter() - started < 0.1


def test_doctype_hidden_from_the_precheck_is_refused_by_the_parser():
    # The CDATA-looking text inside comments fools the pre-check; expat still sees the DTD.
    raw = (
        b"<!-- <![CDATA[ -->"
        b'<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b"<!-- ]]> --><xml><Content>&xxe;</Content></xml>"
    )
    with pytest.raises(XmlError) as excinfo:
        parse_xml(raw)
    assert excinfo.value.reason == "doctype"


def test_undeclared_entity_is_malformed_not_expanded():
    with pytest.raises(XmlError):
        parse_xml(b"<xml><Content>&xxe;</Content></xml>")


def test_body_over_64_kib_is_refused():
    padding = "a" * (MAX_BODY + 1 - len(text_body("")))
    raw = text_body(padding)
    assert len(raw) == MAX_BODY + 1
    with pytest.raises(XmlError) as excinfo:
        parse_xml(raw)
    assert excinfo.value.reason == "too large"


def test_body_of_exactly_64_kib_is_accepted():
    padding = "a" * (MAX_BODY - len(text_body("")))
    raw = text_body(padding)
    assert len(raw) == MAX_BODY
    assert parse_xml(raw)["Content"] == padding


def test_invalid_utf8_in_cdata_is_replaced_and_the_text_kept():
    raw = text_body("@@").replace(b"@@", b"good \xff\xfe bytes \xc3")
    assert parse_xml(raw)["Content"] == "good \ufffd\ufffd bytes \ufffd"


@pytest.mark.parametrize("bad", ["\x01", "\x0b", "\x00", "\x1f", "\x0c", "\ufffe", "\uffff"])
def test_forbidden_control_characters_are_stripped_from_cdata(bad):
    assert parse_xml(text_body(f"a{bad}b{bad}")) ["Content"] == "ab"


def test_tabs_and_newlines_inside_text_are_kept():
    assert parse_xml(text_body("a\tb\nc"))["Content"] == "a\tb\nc"


def test_lone_surrogates_in_a_str_body_are_stripped():
    assert parse_xml(text_body("@@").decode().replace("@@", "a\ud800b"))["Content"] == "ab"


MALFORMED_BODIES = [
    pytest.param(b"", "malformed", id="empty"),
    pytest.param(b"not xml at all", "malformed", id="text"),
    pytest.param(b"<xml><A>1</A>", "malformed", id="unclosed"),
    pytest.param(b"<xml><A>1</B></xml>", "malformed", id="mismatched"),
    pytest.param(b"<xml/><xml/>", "malformed", id="two-roots"),
    pytest.param(b"<root><A>1</A></root>", "root not xml", id="other-root"),
    pytest.param(b"<XML><A>1</A></XML>", "root not xml", id="upper-case-root"),
    pytest.param(b"<x:xml xmlns:x='urn:x'><A>1</A></x:xml>", "root not xml", id="prefixed-root"),
    pytest.param(b"<xml>just text</xml>", "no fields", id="text-only-root"),
    pytest.param(b"<xml><A>1</A><A>2</A></xml>", "repeated A", id="repeated-field"),
]


@pytest.mark.parametrize("raw, reason", MALFORMED_BODIES)
def test_malformed_body_is_refused(raw, reason):
    with pytest.raises(XmlError) as excinfo:
        parse_xml(raw)
    assert excinfo.value.reason == reason


def test_xml_error_is_a_value_error_with_a_reason():
    error = XmlError("too large")
    assert isinstance(error, ValueError)
    assert error.reason == str(error) == "too large"


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=2048))
def test_parse_xml_of_arbitrary_bytes_raises_only_xml_error(raw):
    try:
        assert isinstance(parse_xml(raw), dict)
    except XmlError:
        pass


_XML_TOKENS = list("<>/![]?&;#=\"' xAB\x01\n\u00e9") + [
    "<xml>", "</xml>", "<A>", "</A>", "<![CDATA[", "]]>", "<!DOCTYPE", "<!ENTITY", "&lt;", "&a;",
    "<?xml version='1.0'?>", "<!--", "-->", "\ud800", "\ufffe",
]
_XMLISH = st.lists(st.sampled_from(_XML_TOKENS), max_size=40).map("".join)


@settings(max_examples=500, deadline=None)
@given(_XMLISH)
def test_parse_xml_of_xml_like_text_raises_only_xml_error(text):
    try:
        fields = parse_xml(text.encode("utf-8", "surrogatepass"))
    except XmlError:
        return
    assert isinstance(fields, dict)
    assert all(isinstance(value, (str, dict)) for value in fields.values())


# --- parse_message: every type of §4 --------------------------------------------------------

ORDINARY_MESSAGES = [
    pytest.param(
        "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[成绩]]></Content><MsgId>1234567890123456</MsgId>",
        TextMessage,
        {"content": "成绩", "msg_id": "1234567890123456"},
        id="text",
    ),
    pytest.param(
        "<MsgType><![CDATA[image]]></MsgType><PicUrl><![CDATA[http://mmbiz/pic]]></PicUrl>"
        "<MediaId><![CDATA[media1]]></MediaId><MsgId>2</MsgId>",
        ImageMessage,
        {"pic_url": "http://mmbiz/pic", "media_id": "media1", "msg_id": "2"},
        id="image",
    ),
    pytest.param(
        "<MsgType><![CDATA[voice]]></MsgType><MediaId><![CDATA[m]]></MediaId>"
        "<Format><![CDATA[amr]]></Format><Recognition><![CDATA[你好]]></Recognition><MsgId>3</MsgId>",
        VoiceMessage,
        {"media_id": "m", "format": "amr", "recognition": "你好"},
        id="voice-recognised",
    ),
    pytest.param(
        "<MsgType><![CDATA[voice]]></MsgType><MediaId><![CDATA[m]]></MediaId>"
        "<Format><![CDATA[speex]]></Format><MsgId>3</MsgId>",
        VoiceMessage,
        {"format": "speex", "recognition": None},
        id="voice-without-recognition",
    ),
    pytest.param(
        "<MsgType><![CDATA[video]]></MsgType><MediaId><![CDATA[v]]></MediaId>"
        "<ThumbMediaId><![CDATA[t]]></ThumbMediaId><MsgId>4</MsgId>",
        VideoMessage,
        {"media_id": "v", "thumb_media_id": "t"},
        id="video",
    ),
    pytest.param(
        "<MsgType><![CDATA[shortvideo]]></MsgType><MediaId><![CDATA[sv]]></MediaId>"
        "<ThumbMediaId><![CDATA[st]]></ThumbMediaId><MsgId>5</MsgId>",
        ShortVideoMessage,
        {"media_id": "sv", "thumb_media_id": "st"},
        id="shortvideo",
    ),
    pytest.param(
        "<MsgType><![CDATA[location]]></MsgType><Location_X>23.134521</Location_X>"
        "<Location_Y>113.358803</Location_Y><Scale>20</Scale><Label><![CDATA[位置信息]]></Label><MsgId>6</MsgId>",
        LocationMessage,
        {"latitude": 23.134521, "longitude": 113.358803, "scale": 20, "label": "位置信息"},
        id="location",
    ),
    pytest.param(
        "<MsgType><![CDATA[link]]></MsgType><Title><![CDATA[标题]]></Title>"
        "<Description><![CDATA[描述]]></Description><Url><![CDATA[https://example.com/a]]></Url><MsgId>7</MsgId>",
        LinkMessage,
        {"title": "标题", "description": "描述", "url": "https://example.com/a"},
        id="link",
    ),
]


@pytest.mark.parametrize("inner, cls, expected", ORDINARY_MESSAGES)
def test_ordinary_message_parses_into_its_dataclass(inner, cls, expected):
    parsed = message(inner)
    assert type(parsed) is cls
    assert (parsed.to_user, parsed.from_user, parsed.create_time) == (
        "gh_123456789abc",
        "oUSER_OPENID",
        1700000000,
    )
    assert {name: getattr(parsed, name) for name in expected} == expected


EVENTS = [
    pytest.param(
        event("subscribe", "<EventKey><![CDATA[]]></EventKey>"),
        SubscribeEvent,
        {"event": "subscribe", "scene": None, "ticket": None},
        id="plain-subscribe",
    ),
    pytest.param(
        event("subscribe"), SubscribeEvent, {"scene": None, "event_key": ""}, id="subscribe-no-key"
    ),
    pytest.param(
        event("subscribe", "<EventKey><![CDATA[qrscene_123123]]></EventKey><Ticket><![CDATA[TICKET]]></Ticket>"),
        SubscribeEvent,
        {"scene": "123123", "ticket": "TICKET", "event_key": "qrscene_123123"},
        id="subscribe-via-qr",
    ),
    pytest.param(
        event("subscribe", "<EventKey><![CDATA[qrscene_]]></EventKey>"),
        SubscribeEvent,
        {"scene": None},
        id="subscribe-empty-scene",
    ),
    pytest.param(event("unsubscribe"), UnsubscribeEvent, {"event": "unsubscribe"}, id="unsubscribe"),
    pytest.param(
        event("SCAN", "<EventKey><![CDATA[exam2024]]></EventKey><Ticket><![CDATA[T2]]></Ticket>"),
        ScanEvent,
        {"scene": "exam2024", "ticket": "T2"},
        id="scan",
    ),
    pytest.param(
        event("LOCATION", "<Latitude>23.137466</Latitude><Longitude>113.352425</Longitude><Precision>119.385040</Precision>"),
        LocationEvent,
        {"latitude": 23.137466, "longitude": 113.352425, "precision": 119.38504},
        id="location",
    ),
    pytest.param(
        event("CLICK", "<EventKey><![CDATA[grades]]></EventKey>"), ClickEvent, {"key": "grades"}, id="click"
    ),
    pytest.param(
        event("VIEW", "<EventKey><![CDATA[https://example.com/x]]></EventKey><MenuId>41</MenuId>"),
        ViewEvent,
        {"url": "https://example.com/x", "menu_id": "41"},
        id="view",
    ),
    pytest.param(
        event("VIEW", "<EventKey><![CDATA[https://example.com/x]]></EventKey>"),
        ViewEvent,
        {"menu_id": None},
        id="view-without-menu-id",
    ),
    pytest.param(
        event("view_miniprogram", "<EventKey><![CDATA[pages/index/index]]></EventKey><MenuId>MENUID</MenuId>"),
        ViewMiniprogramEvent,
        {"pagepath": "pages/index/index", "menu_id": "MENUID"},
        id="view-miniprogram",
    ),
    pytest.param(
        event("TEMPLATESENDJOBFINISH", "<MsgID>200163836</MsgID><Status><![CDATA[failed: system failed]]></Status>"),
        TemplateSendJobFinishEvent,
        {"msg_id": "200163836", "status": "failed: system failed"},
        id="template-send-job-finish",
    ),
    pytest.param(
        event("scancode_push", "<EventKey><![CDATA[k]]></EventKey>"),
        UnknownEvent,
        {"event": "scancode_push", "event_key": "k"},
        id="unknown-event",
    ),
]


@pytest.mark.parametrize("inner, cls, expected", EVENTS)
def test_event_parses_into_its_dataclass(inner, cls, expected):
    parsed = message(inner)
    assert type(parsed) is cls
    assert isinstance(parsed, Event)
    assert parsed.msg_type == "event"
    assert {name: getattr(parsed, name) for name in expected} == expected


@pytest.mark.parametrize(
    "name, cls",
    [
        ("Subscribe", SubscribeEvent),
        ("UNSUBSCRIBE", UnsubscribeEvent),
        ("scan", ScanEvent),
        ("location", LocationEvent),
        ("click", ClickEvent),
        ("view", ViewEvent),
        ("VIEW_MINIPROGRAM", ViewMiniprogramEvent),
        ("TemplateSendJobFinish", TemplateSendJobFinishEvent),
    ],
)
def test_event_names_match_regardless_of_case(name, cls):
    extra = "<Latitude>1</Latitude><Longitude>2</Longitude><Precision>3</Precision>"
    parsed = message(event(name, extra))
    assert type(parsed) is cls
    assert parsed.event == name


def test_msg_type_matches_regardless_of_case():
    parsed = message("<MsgType><![CDATA[Text]]></MsgType><Content><![CDATA[x]]></Content>")
    assert isinstance(parsed, TextMessage)


def test_unknown_msg_type_is_an_unknown_message_not_an_error():
    parsed = message("<MsgType><![CDATA[miniprogrampage]]></MsgType><Title>t</Title><MsgId>9</MsgId>")
    assert type(parsed) is UnknownMessage
    assert (parsed.msg_type, parsed.msg_id, parsed.raw["Title"]) == ("miniprogrampage", "9", "t")


def test_raw_keeps_fields_the_dataclass_does_not_type():
    parsed = message(
        "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[x]]></Content>"
        "<MsgDataId>55</MsgDataId><Idx>2</Idx><MsgId>1</MsgId>"
    )
    assert (parsed.raw["MsgDataId"], parsed.raw["Idx"]) == ("55", "2")


def _without(field: str) -> dict:
    fields = {
        "ToUserName": "gh_123456789abc",
        "FromUserName": "oUSER_OPENID",
        "CreateTime": "1700000000",
        "MsgType": "text",
        "Content": "x",
    }
    del fields[field]
    return fields


@pytest.mark.parametrize("field", ["ToUserName", "FromUserName", "CreateTime", "MsgType"])
def test_missing_common_field_is_refused(field):
    with pytest.raises(XmlError) as excinfo:
        parse_message(_without(field))
    assert excinfo.value.reason == f"missing {field}"


@pytest.mark.parametrize("field", ["ToUserName", "FromUserName", "MsgType"])
def test_empty_common_field_counts_as_missing(field):
    fields = {**_without(field), field: ""}
    with pytest.raises(XmlError, match=f"missing {field}"):
        parse_message(fields)


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "1_000", "١٢٣", "1e9", "9" * 20, {"x": "1"}])
def test_create_time_that_is_not_an_integer_is_refused(value):
    fields = {**_without("CreateTime"), "CreateTime": value}
    with pytest.raises(XmlError):
        parse_message(fields)


def test_event_without_event_name_is_refused():
    with pytest.raises(XmlError, match="missing Event"):
        message("<MsgType><![CDATA[event]]></MsgType>")


@pytest.mark.parametrize(
    "inner, reason",
    [
        ("<MsgType>location</MsgType><Location_X>north</Location_X><Location_Y>1</Location_Y>", "bad Location_X"),
        ("<MsgType>location</MsgType><Location_X>nan</Location_X><Location_Y>1</Location_Y>", "bad Location_X"),
        ("<MsgType>location</MsgType><Location_Y>1</Location_Y>", "missing Location_X"),
        ("<MsgType>location</MsgType><Location_X>1</Location_X><Location_Y>1</Location_Y><Scale>x</Scale>", "bad Scale"),
        (event("LOCATION", "<Latitude>1</Latitude><Longitude>inf</Longitude><Precision>1</Precision>"), "bad Longitude"),
    ],
)
def test_location_with_bad_coordinates_is_refused(inner, reason):
    with pytest.raises(XmlError) as excinfo:
        message(inner)
    assert excinfo.value.reason == reason


@settings(max_examples=500, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            ["ToUserName", "FromUserName", "CreateTime", "MsgType", "Event", "EventKey", "MsgId",
             "Location_X", "Location_Y", "Scale", "Latitude", "Longitude", "Precision", "Content"]
        ),
        st.one_of(
            st.none(),
            st.text(max_size=20),
            st.sampled_from(["event", "text", "location", "LOCATION", "subscribe", "1700000000", "1.5"]),
            st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
        ),
    )
)
def test_parse_message_of_arbitrary_fields_raises_only_xml_error(fields):
    try:
        parsed = parse_message(fields)
    except XmlError:
        return
    assert isinstance(parsed.dedup_key, str)


# --- dataclass behaviour and dedup keys (§4.4) ----------------------------------------------


def test_messages_are_frozen_and_hashable():
    parsed = message("<MsgType>text</MsgType><Content>x</Content><MsgId>1</MsgId>")
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.content = "y"
    assert hash(parsed) == hash(message("<MsgType>text</MsgType><Content>x</Content><MsgId>1</MsgId>"))


def test_ordinary_message_dedup_key_is_its_msg_id():
    assert message("<MsgType>text</MsgType><Content>x</Content><MsgId>987654321</MsgId>").dedup_key == "987654321"


def test_event_dedup_key_joins_sender_time_event_and_key():
    parsed = message(event("CLICK", "<EventKey><![CDATA[grades]]></EventKey>"))
    assert parsed.dedup_key == "oUSER_OPENID:1700000000:CLICK:grades"


def test_events_in_the_same_second_get_different_dedup_keys():
    follow = message(event("subscribe"))
    click = message(event("CLICK", "<EventKey>grades</EventKey>"))
    other_click = message(event("CLICK", "<EventKey>menu</EventKey>"))
    assert len({follow.dedup_key, click.dedup_key, other_click.dedup_key}) == 3


def test_template_events_in_the_same_second_get_different_dedup_keys():
    first = message(event("TEMPLATESENDJOBFINISH", "<MsgID>1</MsgID><Status>success</Status>"))
    second = message(event("TEMPLATESENDJOBFINISH", "<MsgID>2</MsgID><Status>success</Status>"))
    assert first.dedup_key != second.dedup_key


def test_long_dedup_key_is_hashed_to_at_most_200_characters():
    long_key = "k" * 1000
    parsed = message(event("CLICK", f"<EventKey>{long_key}</EventKey>"))
    again = message(event("CLICK", f"<EventKey>{long_key}</EventKey>"))
    other = message(event("CLICK", f"<EventKey>{long_key}x</EventKey>"))
    assert len(parsed.dedup_key) <= 200
    assert parsed.dedup_key == again.dedup_key != other.dedup_key


def test_message_without_msg_id_still_has_a_dedup_key():
    parsed = message("<MsgType>text</MsgType><Content>x</Content>")
    assert parsed.dedup_key == "oUSER_OPENID:1700000000:text"


# --- replies (§5) ---------------------------------------------------------------------------


def test_text_reply_matches_the_documented_format():
    assert text_reply("oUSER_OPENID", "gh_123456789abc", "hello", 1700000000) == (
        "<xml><ToUserName><![CDATA[oUSER_OPENID]]></ToUserName>"
        "<FromUserName><![CDATA[gh_123456789abc]]></FromUserName>"
        "<CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        "<Content><![CDATA[hello]]></Content></xml>"
    )


@pytest.mark.parametrize(
    "content",
    [
        "hello",
        "a]]>b",
        "]]>",
        "]]]]>>",
        "<script>alert(1)</script>",
        '<a href="https://example.com/wx/go/grades?x=1&y=2">成绩</a>',
        "line one\nline two",
        "&amp; &lt; <![CDATA[ nested",
    ],
)
def test_text_reply_round_trips_through_parse_xml(content):
    fields = parse_xml(text_reply("oUSER_OPENID", "gh_123456789abc", content, 1700000000))
    assert fields == {
        "ToUserName": "oUSER_OPENID",
        "FromUserName": "gh_123456789abc",
        "CreateTime": "1700000000",
        "MsgType": "text",
        "Content": content,
    }


def test_text_reply_drops_characters_xml_forbids():
    fields = parse_xml(text_reply("o", "gh", "a\x01b\x0bc\ufffe", 1))
    assert fields["Content"] == "abc"


def test_text_reply_create_time_must_be_an_integer():
    with pytest.raises((TypeError, ValueError)):
        text_reply("o", "gh", "x", "1700000000</CreateTime><Evil/>")


def test_reply_user_names_cannot_break_out_of_cdata():
    fields = parse_xml(text_reply("o]]><Evil>", "gh", "x", 1))
    assert fields["ToUserName"] == "o]]><Evil>"
    assert "Evil" not in fields


def test_success_is_the_plain_word():
    assert SUCCESS == "success"


def test_cdata_splits_the_terminator():
    assert cdata("a]]>b") == "<![CDATA[a]]]]><![CDATA[>b]]>"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_reply_parses_back_to_its_content(content):
    fields = parse_xml(text_reply("oUSER", "gh_1", content, 1700000000))
    # Expected: forbidden characters dropped, XML line-end normalisation, and the surrounding
    # whitespace that parse_xml strips from every value.
    expected = messages.strip_invalid_xml_chars(content).replace("\r\n", "\n").replace("\r", "\n").strip()
    assert fields["Content"] == expected


# --- the safe-mode envelope fast path ---------------------------------------------------------

from server.wechat.messages import parse_envelope  # noqa: E402

_ENVELOPE = b"<xml><ToUserName><![CDATA[gh_123456789abc]]></ToUserName><Encrypt><![CDATA[abc+/=]]></Encrypt></xml>"


@pytest.mark.parametrize("body", [
    _ENVELOPE,
    b"  <xml>\n<ToUserName><![CDATA[gh_123456789abc]]></ToUserName>\n<Encrypt><![CDATA[abc+/=]]></Encrypt>\n</xml>\n",
    # Compatible mode and other shapes take the full parser and give the same fields.
    b"<xml><ToUserName><![CDATA[gh_123456789abc]]></ToUserName><FromUserName><![CDATA[o]]></FromUserName>"
    b"<Encrypt><![CDATA[abc+/=]]></Encrypt></xml>",
])
def test_envelope_gives_the_encrypt_field(body):
    fields = parse_envelope(body)
    assert fields["Encrypt"] == "abc+/=" and fields["ToUserName"] == "gh_123456789abc"
    assert fields == {k: v for k, v in parse_xml(body).items()}


@pytest.mark.parametrize("body", [
    b'<!DOCTYPE xml [<!ENTITY e "x">]>' + _ENVELOPE,
    _ENVELOPE.replace(b"<![CDATA[abc+/=]]>", b"&e;"),
    _ENVELOPE + b"<xml/>",
    b"<xml><Encrypt>" + b"A" * (70 * 1024) + b"</Encrypt></xml>",
])
def test_envelope_that_is_not_wechats_shape_goes_through_the_hardened_parser(body):
    with pytest.raises(XmlError):
        parse_envelope(body)
