"""AES safe mode (docs/wechat-protocol.md §3): the §3.7 vectors, hostile ciphertexts, key rotation."""

import base64

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from server.wechat import crypto as crypto_module
from server.wechat.crypto import CryptoError, MessageCrypto, decode_aes_key
from server.wechat.messages import TextMessage, parse_message, parse_xml
from server.wechat.replies import text_reply
from server.wechat.signature import check_signature, sign
from conftest import AES_KEY, APPID, TOKEN  # the §3.7 test vector's values

# --- §3.7 Vectors A and B -------------------------------------------------------------------

RANDOM16 = b"abcdefghijklmnop"
TIMESTAMP = "1700000000"
NONCE = "1234567890"

VECTOR_A_XML = (
    "<xml><ToUserName><![CDATA[oUSER_OPENID]]></ToUserName>"
    "<FromUserName><![CDATA[gh_123456789abc]]></FromUserName>"
    "<CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType>"
    "<Content><![CDATA[hello]]></Content></xml>"
)
VECTOR_A_ENCRYPT = (
    "734H5rOppjjhWnfkswouTG3JBNG/QCNwcWH59zC0Qa5h1btn0jaBnKGC8CWblV+8ZYiX49S62AYpjD1TlE4vd8TPqthk4VBe"
    "rNaFh/8yanPc05EaQ4jkLc4FmuEfpQ/H0f7Im8UH0DZhMyKnRQrHlkllxian0iVXjOAK3Wi+1d7Nx4Y/qyzzpHXU3rBUNxNSW"
    "4JocOyxqcFAaCfkxjzmmRhkOIhIOa+jMr0CySd6R0MHBeG/b16ulaL37Sh8rboxmdR+99IhfUrM/9+DWo5rBpgWcMqweG+tw4"
    "XXdKgZ+nSkTTJSR4aO1zTvh9MhmUqmjJ/pDSO/NihW0i30SNOrhSLTF6ywuidu3CA2RbZyylxk+TJxhpiyMj9MdgqxNVYZ"
)
VECTOR_A_MSG_SIGNATURE = "5aa6a4588ceaf9be55dcf14363721a02be73c075"

VECTOR_B_XML = (
    "<xml><ToUserName><![CDATA[gh_123456789abc]]></ToUserName>"
    "<FromUserName><![CDATA[oUSER_OPENID]]></FromUserName>"
    "<CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType>"
    "<Content><![CDATA[hi]]></Content><MsgId>1234567890123456</MsgId></xml>"
)
VECTOR_B_SIGNATURE = "bd5868e9d0746264d2d435847b90fbee68fcee86"
VECTOR_B_MSG_SIGNATURE = "ff7b671ef4fa1ab860f040e24323f2d49268b8e7"
VECTOR_B_ENCRYPT = (
    "734H5rOppjjhWnfkswouTJ5nxeOna8zwAvmm6oc5RcbP6ta5/wAJ87InsXCZHYNK3o2bILc7qVQcPfBa6aTPsaiHfng8t4Zw"
    "EOPFkc5pH4RN8bOKKnxLbrTIZGqMttMdJeO4Th3wLSKryZ6/rnkV+6OS/A10FjKGLl2Z7OrbfKZNKyRgDhNJDNOLS9nxbUWY"
    "Z8bd1jarbKV1QeIEWh1ym9iH5t6lYg4PCC4YFzH9v4F9pGxxpb6DsZqeqaY8ofaJ8xRBypDCw89DyHiNcvyrYod8pZkCWaIh"
    "MxvUetrWbGg5CVJvyzZQ67FwpIdQrsoYwzXse63AJ2kY9XgQUhVqQQnJ0NMKPm3TRnqH0FdZqrG+gIg0Q32OPFaSumw6qGXv"
    "PIQpyAnUQOk6ZUDdNwV/mN0ncXSZIGUuOcWggLWlP/s="
)
VECTOR_B_BODY = (
    "<xml><ToUserName><![CDATA[gh_123456789abc]]></ToUserName>"
    f"<Encrypt><![CDATA[{VECTOR_B_ENCRYPT}]]></Encrypt></xml>"
)

# --- §3.7 Vector C: wechatpy tests/test_crypto.py (WeCom flavour, CorpID as the trailer) -----
# The doc gives only the inputs and a prefix; the reply XML, the full expected envelope and the
# decrypt case below are copied from that upstream test file.

C_TOKEN = "123456"
C_AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
C_CORP_ID = "wx49f0ab532d5d035a"
C_RANDOM16 = b"1234567890123456"
C_TIMESTAMP = "1411525903"
C_NONCE = "461056294"
C_REPLY = """<xml>
<MsgType><![CDATA[text]]></MsgType>
<Content><![CDATA[test]]></Content>
<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>
<ToUserName><![CDATA[messense]]></ToUserName>
<AgentID>1</AgentID>
<CreateTime>1411525903</CreateTime>
</xml>"""
C_EXPECTED_ENVELOPE = """<xml>
<Encrypt><![CDATA[9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNcBqGsL8GqxlhZgURnAtObvesEl5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0nFhHZSjPUL2Q1qvSUCUld+/WIXrx0oyKQmpB6o8NRrrNrsDf03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbwbgX05UPPJvFurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O5oazPoQJz0nTYjxxEE8kv3kFxtAGVRe3ypD3WeK2XeFYFMNMpatF9XiKzHo3]]></Encrypt>
<MsgSignature><![CDATA[407518b7649e86ef23978113f92d27afa9296533]]></MsgSignature>
<TimeStamp>1411525903</TimeStamp>
<Nonce><![CDATA[461056294]]></Nonce>
</xml>"""  # noqa: E501
C_INBOUND_ENCRYPT = (
    "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXz"
    "F6Bv283dGymzxh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gY"
    "Nx410cvkKR2/nPwBiT+P4hIiOAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2S"
    "jHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7FS709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En74"
    "9zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0="
)
C_INBOUND_MSG_SIGNATURE = "74d92dfeb87ba7c714f89d98870ae5eb62dff26d"

OTHER_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


@pytest.fixture
def crypto():
    return MessageCrypto(TOKEN, AES_KEY, APPID)


def _raw_aes(plain: bytes, encoding_aes_key: str = AES_KEY) -> str:
    """AES-CBC with no framing or padding checks, to forge hostile plaintexts."""
    key = base64.b64decode(encoding_aes_key + "=")
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()


def _raw_aes_decrypt(encrypt_b64: str, encoding_aes_key: str = AES_KEY) -> bytes:
    key = base64.b64decode(encoding_aes_key + "=")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    return decryptor.update(base64.b64decode(encrypt_b64)) + decryptor.finalize()


def _framed(xml: bytes, appid: bytes = APPID.encode(), length: int | None = None) -> bytes:
    size = len(xml) if length is None else length
    return RANDOM16 + size.to_bytes(4, "big") + xml + appid


def _pkcs7_32(data: bytes) -> bytes:
    n = 32 - len(data) % 32
    return data + bytes([n]) * n


# --- keys (§3.1) ----------------------------------------------------------------------------


def test_encoding_aes_key_decodes_to_the_vector_a_key():
    expected = bytes.fromhex("3031323334353637383961626364656630313233343536373839616263646566")
    assert decode_aes_key(AES_KEY) == expected


def test_42_character_key_is_refused_with_its_length():
    with pytest.raises(ValueError, match="must be 43 characters of A-Z, a-z, 0-9, got 42"):
        decode_aes_key(AES_KEY[:-1])


@pytest.mark.parametrize(
    "bad_key",
    [
        "",
        AES_KEY + "A",
        AES_KEY[:-1] + "+",
        AES_KEY[:-1] + "/",
        AES_KEY[:-1] + "=",
        AES_KEY[:-1] + " ",
        AES_KEY[:-1] + "é",
        AES_KEY[:-1] + "\n",
        "٠" * 43,
    ],
)
def test_malformed_aes_key_is_refused(bad_key):
    with pytest.raises(ValueError, match="must be 43 characters of A-Z, a-z, 0-9"):
        decode_aes_key(bad_key)


def test_malformed_aes_key_error_does_not_echo_the_key():
    bad_key = AES_KEY[:-1] + "+"
    with pytest.raises(ValueError) as excinfo:
        decode_aes_key(bad_key)
    assert bad_key not in str(excinfo.value)


def test_message_crypto_refuses_a_malformed_key():
    with pytest.raises(ValueError):
        MessageCrypto(TOKEN, AES_KEY[:-1], APPID)


# --- Vector A: encrypted passive reply ------------------------------------------------------


def test_vector_a_encrypt_and_msg_signature_match(crypto):
    encrypt, msg_signature = crypto.encrypt_message(VECTOR_A_XML, TIMESTAMP, NONCE, RANDOM16)
    assert encrypt == VECTOR_A_ENCRYPT
    assert msg_signature == VECTOR_A_MSG_SIGNATURE


def test_vector_a_plaintext_layout_and_pad_of_28(crypto):
    plain = _raw_aes_decrypt(crypto.encrypt(VECTOR_A_XML, RANDOM16))
    assert len(plain) == 288
    assert plain[:24] == bytes.fromhex("6162636465666768696a6b6c6d6e6f70000000de3c786d6c")
    assert plain[-28:] == bytes([28]) * 28
    assert plain[-28 - len(APPID):-28] == APPID.encode()


def test_text_reply_builds_the_vector_a_xml_byte_for_byte():
    xml = text_reply("oUSER_OPENID", "gh_123456789abc", "hello", 1700000000)
    assert xml == VECTOR_A_XML
    assert len(xml.encode()) == 222


def test_vector_a_reply_envelope_carries_encrypt_signature_timestamp_nonce(crypto):
    envelope = crypto.encrypt_reply(VECTOR_A_XML, TIMESTAMP, NONCE, RANDOM16)
    assert parse_xml(envelope.encode()) == {
        "Encrypt": VECTOR_A_ENCRYPT,
        "MsgSignature": VECTOR_A_MSG_SIGNATURE,
        "TimeStamp": TIMESTAMP,
        "Nonce": NONCE,
    }


def test_bytes_and_str_xml_encrypt_the_same(crypto):
    assert crypto.encrypt(VECTOR_A_XML.encode(), RANDOM16) == crypto.encrypt(VECTOR_A_XML, RANDOM16)


# --- Vector B: encrypted inbound request ----------------------------------------------------


def test_vector_b_request_signatures_verify_and_body_decrypts(crypto):
    assert check_signature(TOKEN, VECTOR_B_SIGNATURE, TIMESTAMP, NONCE)
    encrypt = parse_xml(VECTOR_B_BODY.encode())["Encrypt"]
    xml = crypto.decrypt_message(VECTOR_B_MSG_SIGNATURE, TIMESTAMP, NONCE, encrypt)
    assert xml == VECTOR_B_XML.encode()


def test_vector_b_decrypts_to_a_text_message(crypto):
    xml = crypto.decrypt_message(VECTOR_B_MSG_SIGNATURE, TIMESTAMP, NONCE, VECTOR_B_ENCRYPT)
    message = parse_message(parse_xml(xml))
    assert isinstance(message, TextMessage)
    assert (message.content, message.msg_id, message.from_user) == (
        "hi",
        "1234567890123456",
        "oUSER_OPENID",
    )


def test_vector_b_is_reproduced_by_encrypt_message(crypto):
    assert crypto.encrypt_message(VECTOR_B_XML, TIMESTAMP, NONCE, RANDOM16) == (
        VECTOR_B_ENCRYPT,
        VECTOR_B_MSG_SIGNATURE,
    )


# --- Vector C: wechatpy's upstream test -----------------------------------------------------


def test_vector_c_reply_envelope_matches_wechatpy_exactly():
    crypto = MessageCrypto(C_TOKEN, C_AES_KEY, C_CORP_ID)
    envelope = crypto.encrypt_reply(C_REPLY, C_TIMESTAMP, C_NONCE, C_RANDOM16)
    assert envelope == C_EXPECTED_ENVELOPE
    assert "407518b7649e86ef23978113f92d27afa9296533" in envelope
    assert "<Encrypt><![CDATA[9s4gMv99m88kKTh/" in envelope


def test_vector_c_inbound_message_decrypts_like_wechatpy():
    crypto = MessageCrypto(C_TOKEN, C_AES_KEY, C_CORP_ID)
    xml = crypto.decrypt_message(C_INBOUND_MSG_SIGNATURE, C_TIMESTAMP, C_NONCE, C_INBOUND_ENCRYPT)
    fields = parse_xml(xml)
    assert (fields["Content"], fields["FromUserName"]) == ("test", "messense")


# --- round trips ----------------------------------------------------------------------------


def test_fresh_random_prefix_gives_different_ciphertexts_that_both_decrypt(crypto):
    first, second = crypto.encrypt(VECTOR_A_XML), crypto.encrypt(VECTOR_A_XML)
    assert first != second
    assert crypto.decrypt(first) == crypto.decrypt(second) == VECTOR_A_XML.encode()


def test_aligned_plaintext_gets_a_full_block_of_32(crypto):
    # 16 + 4 + 10 + 18 = 48 -> pad 16; 16 + 4 + 26 + 18 = 64 -> aligned -> a full 32-byte block.
    xml = b"x" * 26
    plain = _raw_aes_decrypt(crypto.encrypt(xml, RANDOM16))
    assert len(plain) == 96
    assert plain[-32:] == bytes([32]) * 32
    assert crypto.decrypt(crypto.encrypt(xml)) == xml


def test_unicode_xml_length_field_counts_bytes(crypto):
    xml = "<xml><Content><![CDATA[你好]]></Content></xml>"
    plain = _raw_aes_decrypt(crypto.encrypt(xml, RANDOM16))
    assert int.from_bytes(plain[16:20], "big") == len(xml.encode("utf-8"))
    assert crypto.decrypt(crypto.encrypt(xml)).decode() == xml


@pytest.mark.parametrize("random16", [b"", b"short", b"x" * 17])
def test_random_prefix_must_be_16_bytes(crypto, random16):
    with pytest.raises(ValueError):
        crypto.encrypt(VECTOR_A_XML, random16)


@settings(max_examples=100, deadline=None)
@given(xml=st.binary(max_size=2048), random16=st.binary(min_size=16, max_size=16))
def test_any_message_round_trips(xml, random16):
    crypto = MessageCrypto(TOKEN, AES_KEY, APPID)
    encrypt, msg_signature = crypto.encrypt_message(xml, TIMESTAMP, NONCE, random16)
    assert crypto.decrypt_message(msg_signature, TIMESTAMP, NONCE, encrypt) == xml


# --- hostile ciphertexts --------------------------------------------------------------------


def _pad_zero() -> bytes:
    body = _framed(b"<xml/>")
    return body + bytes(32 - len(body) % 32)  # pad bytes of value 0


def _pad_33() -> bytes:
    body = _framed(b"<xml/>")
    body += b"-" * (32 - len(body) % 32)
    return body + bytes([33]) * 32  # last byte says 33 > 32


def _pad_inconsistent() -> bytes:
    padded = bytearray(_pkcs7_32(_framed(b"<xml><A>1</A></xml>")))
    assert padded[-1] > 2
    padded[-2] ^= 0x01  # one pad byte differs from the rest
    return bytes(padded)


def _length_beyond_data() -> bytes:
    return _pkcs7_32(_framed(b"<xml/>", length=10_000))


def _shorter_than_header() -> bytes:
    return _pkcs7_32(b"0123456789")  # unpads to 10 bytes, less than random16 + length


HOSTILE_PLAINTEXTS = [
    pytest.param(_pkcs7_32(_framed(b"<xml/>", appid=b"wx0000000000000000")), "appid mismatch", id="wrong-appid"),
    pytest.param(_pkcs7_32(_framed(b"<xml/>", appid=b"")), "appid mismatch", id="no-appid"),
    pytest.param(_pkcs7_32(_framed(b"<xml/>", appid=APPID.encode() + b"x")), "appid mismatch", id="appid-plus-byte"),
    pytest.param(_pad_zero(), "bad padding", id="pad-byte-0"),
    pytest.param(_pad_33(), "bad padding", id="pad-byte-33"),
    pytest.param(_pad_inconsistent(), "bad padding", id="inconsistent-pad-bytes"),
    pytest.param(_length_beyond_data(), "bad length", id="length-field-beyond-data"),
    pytest.param(_shorter_than_header(), "bad length", id="shorter-than-header"),
]


@pytest.mark.parametrize("plain, reason", HOSTILE_PLAINTEXTS)
def test_forged_plaintext_is_refused(crypto, plain, reason):
    with pytest.raises(CryptoError) as excinfo:
        crypto.decrypt(_raw_aes(plain))
    assert excinfo.value.reason == reason


def test_wrong_appid_is_refused(crypto):
    other_account = MessageCrypto(TOKEN, AES_KEY, "wx0000000000000000")
    with pytest.raises(CryptoError, match="appid mismatch"):
        crypto.decrypt(other_account.encrypt(VECTOR_A_XML))


def test_message_under_another_key_is_refused(crypto):
    stranger = MessageCrypto(TOKEN, OTHER_AES_KEY, APPID)
    with pytest.raises(CryptoError):
        crypto.decrypt(stranger.encrypt(VECTOR_A_XML))


HOSTILE_ENCRYPT_VALUES = [
    pytest.param(VECTOR_A_ENCRYPT[:-1], "bad base64", id="truncated-base64"),
    pytest.param(VECTOR_A_ENCRYPT[:-4], "bad length", id="truncated-at-quantum"),
    pytest.param("not base64!!", "bad base64", id="punctuation"),
    pytest.param("密文密文", "bad base64", id="non-ascii"),
    pytest.param(VECTOR_A_ENCRYPT[:40] + " " + VECTOR_A_ENCRYPT[40:], "bad base64", id="embedded-space"),
    pytest.param(VECTOR_A_ENCRYPT.replace("+", "-").replace("/", "_"), "bad base64", id="urlsafe-alphabet"),
    pytest.param(base64.b64encode(b"x" * 15).decode(), "bad length", id="15-bytes"),
    pytest.param(base64.b64encode(b"x" * 40).decode(), "bad length", id="40-bytes"),
    pytest.param("", "bad length", id="empty"),
    pytest.param(None, "bad base64", id="none"),
    pytest.param(12345, "bad base64", id="int"),
]


@pytest.mark.parametrize("encrypt, reason", HOSTILE_ENCRYPT_VALUES)
def test_malformed_encrypt_value_is_refused(crypto, encrypt, reason):
    with pytest.raises(CryptoError) as excinfo:
        crypto.decrypt(encrypt)
    assert excinfo.value.reason == reason


def test_crypto_error_is_a_value_error_with_a_reason():
    error = CryptoError("bad padding")
    assert isinstance(error, ValueError)
    assert error.reason == str(error) == "bad padding"


@pytest.mark.parametrize(
    "msg_signature, timestamp, nonce",
    [
        ("0" * 40, TIMESTAMP, NONCE),
        (VECTOR_A_MSG_SIGNATURE, "1700000001", NONCE),
        (VECTOR_A_MSG_SIGNATURE, TIMESTAMP, "1234567891"),
        ("", TIMESTAMP, NONCE),
        (None, TIMESTAMP, NONCE),
    ],
)
def test_wrong_msg_signature_is_refused_before_decrypting(crypto, monkeypatch, msg_signature, timestamp, nonce):
    def must_not_decrypt(*_args):
        raise AssertionError("decrypted a message with a bad signature")

    monkeypatch.setattr(MessageCrypto, "decrypt_with_key", must_not_decrypt)
    with pytest.raises(CryptoError) as excinfo:
        crypto.decrypt_message(msg_signature, timestamp, nonce, VECTOR_A_ENCRYPT)
    assert excinfo.value.reason == "bad signature"


def test_signed_garbage_is_refused_after_the_signature_passes(crypto):
    garbage = base64.b64encode(b"\x00" * 64).decode()
    with pytest.raises(CryptoError) as excinfo:
        crypto.decrypt_message(sign(TOKEN, TIMESTAMP, NONCE, garbage), TIMESTAMP, NONCE, garbage)
    assert excinfo.value.reason != "bad signature"


def test_appid_trailer_is_compared_in_constant_time(crypto, monkeypatch):
    calls = []

    def recording_compare(a, b):
        calls.append((a, b))
        return a == b

    monkeypatch.setattr(crypto_module.hmac, "compare_digest", recording_compare)
    crypto.decrypt(VECTOR_A_ENCRYPT)
    assert calls == [(APPID.encode(), APPID.encode())]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300).map(lambda b: base64.b64encode(b).decode())))
def test_decrypt_of_arbitrary_strings_raises_only_crypto_error(value):
    crypto = MessageCrypto(TOKEN, AES_KEY, APPID)
    try:
        crypto.decrypt(value)
    except CryptoError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 20).flatmap(lambda k: st.binary(min_size=16 * k, max_size=16 * k)))
def test_decrypt_of_block_aligned_random_ciphertext_raises_only_crypto_error(ciphertext):
    crypto = MessageCrypto(TOKEN, AES_KEY, APPID)
    try:
        crypto.decrypt(base64.b64encode(ciphertext).decode())
    except CryptoError:
        pass


# --- key rotation (§2, encryption FAQ) ------------------------------------------------------


def test_message_under_the_previous_key_decrypts_and_names_that_key():
    old = MessageCrypto(TOKEN, OTHER_AES_KEY, APPID)
    rotated = MessageCrypto(TOKEN, AES_KEY, APPID, previous_key=OTHER_AES_KEY)
    encrypt, msg_signature = old.encrypt_message(VECTOR_A_XML, TIMESTAMP, NONCE)
    xml, key_index = rotated.decrypt_message_with_key(msg_signature, TIMESTAMP, NONCE, encrypt)
    assert (xml, key_index) == (VECTOR_A_XML.encode(), 1)


def test_message_under_the_current_key_names_key_zero():
    rotated = MessageCrypto(TOKEN, AES_KEY, APPID, previous_key=OTHER_AES_KEY)
    encrypt, msg_signature = rotated.encrypt_message(VECTOR_A_XML, TIMESTAMP, NONCE)
    assert rotated.decrypt_message_with_key(msg_signature, TIMESTAMP, NONCE, encrypt)[1] == 0


def test_reply_is_encrypted_with_the_key_that_worked():
    old = MessageCrypto(TOKEN, OTHER_AES_KEY, APPID)
    rotated = MessageCrypto(TOKEN, AES_KEY, APPID, previous_key=OTHER_AES_KEY)
    envelope = parse_xml(rotated.encrypt_reply(VECTOR_A_XML, TIMESTAMP, NONCE, key_index=1))
    assert old.decrypt_message(envelope["MsgSignature"], TIMESTAMP, NONCE, envelope["Encrypt"]) == (
        VECTOR_A_XML.encode()
    )
    with pytest.raises(CryptoError):
        MessageCrypto(TOKEN, AES_KEY, APPID).decrypt(envelope["Encrypt"])


def test_without_a_previous_key_an_old_message_is_refused():
    old = MessageCrypto(TOKEN, OTHER_AES_KEY, APPID)
    with pytest.raises(CryptoError):
        MessageCrypto(TOKEN, AES_KEY, APPID).decrypt(old.encrypt(VECTOR_A_XML))


def test_unknown_key_index_is_a_programming_error(crypto):
    with pytest.raises(ValueError):
        crypto.encrypt_reply(VECTOR_A_XML, TIMESTAMP, NONCE, key_index=1)


# --- reply envelope -------------------------------------------------------------------------


@pytest.mark.parametrize("timestamp", ["", "17000x", "1<2", " 1700000000", "-1"])
def test_reply_envelope_refuses_a_non_numeric_timestamp(crypto, timestamp):
    with pytest.raises(ValueError):
        crypto.encrypt_reply(VECTOR_A_XML, timestamp, NONCE)


def test_reply_envelope_stays_valid_xml_for_a_hostile_nonce(crypto):
    nonce = "a]]><evil/>"
    envelope = parse_xml(crypto.encrypt_reply(VECTOR_A_XML, TIMESTAMP, nonce))
    assert envelope["Nonce"] == nonce
    assert sign(TOKEN, TIMESTAMP, nonce, envelope["Encrypt"]) == envelope["MsgSignature"]
