"""Callback and JS-SDK signatures against the vectors of docs/wechat-protocol.md §1, §3.7 and §9."""

import hashlib
import string

import pytest

from server.wechat import signature
from conftest import TOKEN  # the §3.7 test vector's values
from server.wechat.signature import (
    check_msg_signature,
    check_signature,
    jsapi_signature,
    random_nonce,
    sign,
)

# §1 official vector
ACCESS_TOKEN = "AAAAA"
ACCESS_TIMESTAMP = "1714036504"
ACCESS_NONCE = "1514711492"
ACCESS_SIGNATURE = "f464b24fc39322e44b38aa78f5edd27bd1441696"

# §3.7 Vectors A and B share token, timestamp and nonce
TIMESTAMP = "1700000000"
NONCE = "1234567890"
VECTOR_A_ENCRYPT = (
    "734H5rOppjjhWnfkswouTG3JBNG/QCNwcWH59zC0Qa5h1btn0jaBnKGC8CWblV+8ZYiX49S62AYpjD1TlE4vd8TPqthk4VBe"
    "rNaFh/8yanPc05EaQ4jkLc4FmuEfpQ/H0f7Im8UH0DZhMyKnRQrHlkllxian0iVXjOAK3Wi+1d7Nx4Y/qyzzpHXU3rBUNxNSW"
    "4JocOyxqcFAaCfkxjzmmRhkOIhIOa+jMr0CySd6R0MHBeG/b16ulaL37Sh8rboxmdR+99IhfUrM/9+DWo5rBpgWcMqweG+tw4"
    "XXdKgZ+nSkTTJSR4aO1zTvh9MhmUqmjJ/pDSO/NihW0i30SNOrhSLTF6ywuidu3CA2RbZyylxk+TJxhpiyMj9MdgqxNVYZ"
)
VECTOR_A_MSG_SIGNATURE = "5aa6a4588ceaf9be55dcf14363721a02be73c075"
VECTOR_B_SIGNATURE = "bd5868e9d0746264d2d435847b90fbee68fcee86"

# §9 official JS-SDK example
JSAPI_TICKET = (
    "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg"
)
JSAPI_NONCE = "Wm3WZYTPz0wzccnW"
JSAPI_TIMESTAMP = "1414587457"


def test_official_access_vector_signs_to_the_documented_digest():
    assert sign(ACCESS_TOKEN, ACCESS_TIMESTAMP, ACCESS_NONCE) == ACCESS_SIGNATURE


def test_official_access_vector_passes_check_signature():
    assert check_signature(ACCESS_TOKEN, ACCESS_SIGNATURE, ACCESS_TIMESTAMP, ACCESS_NONCE)


def test_sign_sorts_values_before_joining():
    expected = hashlib.sha1(b"15147114921714036504AAAAA").hexdigest()
    assert sign("AAAAA", "1714036504", "1514711492") == expected
    assert sign("1514711492", "AAAAA", "1714036504") == expected


def test_vector_b_url_signature_verifies():
    assert check_signature(TOKEN, VECTOR_B_SIGNATURE, TIMESTAMP, NONCE)


def test_vector_a_msg_signature_verifies():
    assert check_msg_signature(TOKEN, VECTOR_A_MSG_SIGNATURE, TIMESTAMP, NONCE, VECTOR_A_ENCRYPT)


def test_msg_signature_covers_the_encrypt_value():
    tampered = "A" + VECTOR_A_ENCRYPT[1:]
    assert not check_msg_signature(TOKEN, VECTOR_A_MSG_SIGNATURE, TIMESTAMP, NONCE, tampered)


@pytest.mark.parametrize(
    "token, sig, timestamp, nonce",
    [
        ("AAAAB", ACCESS_SIGNATURE, ACCESS_TIMESTAMP, ACCESS_NONCE),
        (ACCESS_TOKEN, ACCESS_SIGNATURE, "1714036505", ACCESS_NONCE),
        (ACCESS_TOKEN, ACCESS_SIGNATURE, ACCESS_TIMESTAMP, "1514711493"),
        (ACCESS_TOKEN, ACCESS_SIGNATURE[:-1] + "7", ACCESS_TIMESTAMP, ACCESS_NONCE),
        (ACCESS_TOKEN, ACCESS_SIGNATURE[:-1], ACCESS_TIMESTAMP, ACCESS_NONCE),
        (ACCESS_TOKEN, ACCESS_SIGNATURE + "0", ACCESS_TIMESTAMP, ACCESS_NONCE),
    ],
)
def test_wrong_signature_is_refused(token, sig, timestamp, nonce):
    assert check_signature(token, sig, timestamp, nonce) is False


_GOOD = [ACCESS_TOKEN, ACCESS_SIGNATURE, ACCESS_TIMESTAMP, ACCESS_NONCE]
_HOSTILE_VALUES = [None, "", "签名", "f464b24fc39322e44b38aa78f5edd27bd14416\u00e9\u00e9", 123, b"bytes"]


@pytest.mark.parametrize("position", range(4))
@pytest.mark.parametrize("value", _HOSTILE_VALUES)
def test_missing_or_non_ascii_input_is_false_not_an_error(position, value):
    args = list(_GOOD)
    args[position] = value
    assert check_signature(*args) is False


@pytest.mark.parametrize("position", range(5))
@pytest.mark.parametrize("value", _HOSTILE_VALUES)
def test_msg_signature_with_missing_or_non_ascii_input_is_false(position, value):
    args = [TOKEN, VECTOR_A_MSG_SIGNATURE, TIMESTAMP, NONCE, VECTOR_A_ENCRYPT]
    args[position] = value
    assert check_msg_signature(*args) is False


def test_signatures_are_compared_in_constant_time(monkeypatch):
    calls = []

    def recording_compare(a, b):
        calls.append((a, b))
        return a == b

    monkeypatch.setattr(signature.hmac, "compare_digest", recording_compare)
    assert check_signature(ACCESS_TOKEN, ACCESS_SIGNATURE, ACCESS_TIMESTAMP, ACCESS_NONCE)
    assert check_msg_signature(TOKEN, VECTOR_A_MSG_SIGNATURE, TIMESTAMP, NONCE, VECTOR_A_ENCRYPT)
    assert len(calls) == 2


def test_official_jsapi_example_signs_to_the_documented_digest():
    url = "http://mp.weixin.qq.com?params=value"
    assert (
        jsapi_signature(JSAPI_TICKET, JSAPI_NONCE, JSAPI_TIMESTAMP, url)
        == "0f9de62fce790f9a083d5c99e95740ceb90c27ed"
    )


def test_older_jsapi_example_without_query_signs_to_its_digest():
    url = "http://mp.weixin.qq.com"
    assert (
        jsapi_signature(JSAPI_TICKET, JSAPI_NONCE, JSAPI_TIMESTAMP, url)
        == "f4d90daf4b3bca3078ab155816175ba34c443a7b"
    )


def test_jsapi_signature_ignores_the_url_fragment():
    url = "http://mp.weixin.qq.com?params=value"
    with_fragment = url + "#/route?x=1"
    assert jsapi_signature(JSAPI_TICKET, JSAPI_NONCE, JSAPI_TIMESTAMP, with_fragment) == (
        jsapi_signature(JSAPI_TICKET, JSAPI_NONCE, JSAPI_TIMESTAMP, url)
    )


def test_jsapi_signature_does_not_url_escape_values():
    url = "http://example.com/a b?q=中"
    string1 = f"jsapi_ticket=t&noncestr=n&timestamp=1&url={url}"
    assert jsapi_signature("t", "n", "1", url) == hashlib.sha1(string1.encode()).hexdigest()


def test_random_nonce_is_letters_and_digits_of_the_requested_length():
    for n in (1, 16, 32):
        nonce = random_nonce(n)
        assert len(nonce) == n
        assert set(nonce) <= set(string.ascii_letters + string.digits)


def test_random_nonce_differs_between_calls():
    assert len({random_nonce() for _ in range(50)}) == 50
