"""AES "safe mode" message encryption of docs/wechat-protocol.md §3 (AES-256-CBC, 32-byte PKCS#7)."""

from __future__ import annotations

import base64
import binascii
import hmac
import re

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .replies import cdata
from .signature import check_msg_signature, random_nonce, sign

_AES_KEY_RE = re.compile(r"[A-Za-z0-9]{43}")
_KEY_RULE = "must be 43 characters of A-Z, a-z, 0-9"
_TIMESTAMP_RE = re.compile(r"[0-9]{1,19}")
_RANDOM_LEN = 16  # §3.2: 16 opaque bytes lead every plaintext
_LENGTH_LEN = 4  # §3.2: big-endian length of the XML
_PAD_BLOCK = 32  # §3.3: PKCS#7 to 32 bytes, not the AES block size of 16
_AES_BLOCK = 16


class CryptoError(ValueError):
    """An encrypted message that is not valid for this account; `.reason` is safe to log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def decode_aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key of a 43-character EncodingAESKey (§3.1), else ValueError."""
    # The key is a secret: the messages say what is wrong without echoing it.
    if not isinstance(encoding_aes_key, str):
        raise ValueError(f"{_KEY_RULE}, got {type(encoding_aes_key).__name__}")
    if len(encoding_aes_key) != 43:
        raise ValueError(f"{_KEY_RULE}, got {len(encoding_aes_key)}")
    if not _AES_KEY_RE.fullmatch(encoding_aes_key):
        raise ValueError(f"{_KEY_RULE}, got other characters")
    # §3.1: AESKey = Base64_Decode(EncodingAESKey + "="); the last 2 bits are discarded.
    return base64.b64decode(encoding_aes_key + "=")


def _pad(data: bytes) -> bytes:
    # §3.3: n = 32 - len % 32 bytes of value n; a full block of 32 when already aligned.
    n = _PAD_BLOCK - len(data) % _PAD_BLOCK
    return data + bytes([n]) * n


def _unpad(data: bytes) -> bytes:
    n = data[-1]
    # §3.3: the pad is 1..32 bytes, all of value n. Checking every byte refuses more forgeries
    # than reading the last one alone, as wechatpy does.
    if not 1 <= n <= _PAD_BLOCK or n > len(data) or data[-n:] != bytes([n]) * n:
        raise CryptoError("bad padding")
    return data[:-n]


def _b64decode(encrypt_b64: str) -> bytes:
    if not isinstance(encrypt_b64, (str, bytes)):
        raise CryptoError("bad base64")
    try:
        # validate=True: refuse anything outside the base64 alphabet instead of skipping it.
        return base64.b64decode(encrypt_b64, validate=True)
    except (binascii.Error, ValueError):
        raise CryptoError("bad base64") from None


def _as_bytes(xml: str | bytes) -> bytes:
    return xml.encode("utf-8") if isinstance(xml, str) else bytes(xml)


class MessageCrypto:
    """Encrypts, decrypts and signs safe-mode messages for one account (§3).

    `previous_key` is the EncodingAESKey before the last change: decryption falls back to it
    and the reply goes out under whichever key worked (§2, encryption FAQ [M8]).
    """

    def __init__(
        self,
        token: str,
        encoding_aes_key: str,
        appid: str,
        previous_key: str | None = None,
    ) -> None:
        self.token = token
        self.appid = appid
        self._appid = appid.encode("utf-8")
        self._keys = [decode_aes_key(encoding_aes_key)]
        self._ciphers: dict[int, Cipher] = {}
        if previous_key:
            self._keys.append(decode_aes_key(previous_key))

    # --- AES core (§3.2-3.4) ---

    def _cipher(self, key_index: int) -> Cipher:
        if not 0 <= key_index < len(self._keys):
            raise ValueError(f"no key with index {key_index}")
        cipher = self._ciphers.get(key_index)
        if cipher is None:
            key = self._keys[key_index]
            # §3.1: IV = first 16 bytes of the key. No library padding: the pad is WeChat's own.
            # A Cipher is only a recipe (each encryptor() is fresh), so one per key is reused.
            cipher = self._ciphers[key_index] = Cipher(algorithms.AES(key), modes.CBC(key[:_AES_BLOCK]))
        return cipher

    def encrypt(
        self, xml: str | bytes, random16: bytes | None = None, key_index: int = 0
    ) -> str:
        """Base64 of AES-CBC(random16 || len BE32 || xml || AppID, PKCS#7 to 32) (§3.2-3.4)."""
        if random16 is None:
            # Letters and digits, like the official sample SDK and wechatpy (§3.2).
            random16 = random_nonce(_RANDOM_LEN).encode("ascii")
        if len(random16) != _RANDOM_LEN:
            raise ValueError("random16 must be 16 bytes")
        message = _as_bytes(xml)
        plain = random16 + len(message).to_bytes(_LENGTH_LEN, "big") + message + self._appid
        encryptor = self._cipher(key_index).encryptor()
        ciphertext = encryptor.update(_pad(plain)) + encryptor.finalize()
        return base64.b64encode(ciphertext).decode("ascii")

    def _decrypt_with(self, ciphertext: bytes, key_index: int) -> bytes:
        decryptor = self._cipher(key_index).decryptor()
        content = _unpad(decryptor.update(ciphertext) + decryptor.finalize())
        header = _RANDOM_LEN + _LENGTH_LEN
        if len(content) < header:
            raise CryptoError("bad length")
        length = int.from_bytes(content[_RANDOM_LEN:header], "big")
        if header + length > len(content):
            raise CryptoError("bad length")
        trailer = content[header + length:]
        # §3.2: the trailer is our AppID; a message for another account is refused.
        if not hmac.compare_digest(trailer, self._appid):
            raise CryptoError("appid mismatch")
        return content[header:header + length]

    def decrypt_with_key(self, encrypt_b64: str) -> tuple[bytes, int]:
        """(inner XML, index of the key that worked: 0 current, 1 previous); CryptoError if none."""
        ciphertext = _b64decode(encrypt_b64)
        if not ciphertext or len(ciphertext) % _AES_BLOCK:
            raise CryptoError("bad length")
        first_error: CryptoError | None = None
        for index in range(len(self._keys)):
            try:
                return self._decrypt_with(ciphertext, index), index
            except CryptoError as exc:
                first_error = first_error or exc
        assert first_error is not None
        raise first_error

    def decrypt(self, encrypt_b64: str) -> bytes:
        """The inner XML bytes of an `Encrypt` value (§3.4); CryptoError if it is not ours."""
        return self.decrypt_with_key(encrypt_b64)[0]

    # --- signed envelopes (§3.5, §3.6) ---

    def decrypt_message_with_key(
        self, msg_signature: str, timestamp: str, nonce: str, encrypt_b64: str
    ) -> tuple[bytes, int]:
        """Verify msg_signature, then decrypt; returns (inner XML, key index for the reply)."""
        # §3.5: verify before decrypting, so forged ciphertexts never reach the padding checks.
        if not check_msg_signature(self.token, msg_signature, timestamp, nonce, encrypt_b64):
            raise CryptoError("bad signature")
        return self.decrypt_with_key(encrypt_b64)

    def decrypt_message(
        self, msg_signature: str, timestamp: str, nonce: str, encrypt_b64: str
    ) -> bytes:
        """Verify msg_signature, then decrypt (§3.5); CryptoError("bad signature") first."""
        return self.decrypt_message_with_key(msg_signature, timestamp, nonce, encrypt_b64)[0]

    def encrypt_message(
        self,
        xml: str | bytes,
        timestamp: str,
        nonce: str,
        random16: bytes | None = None,
        key_index: int = 0,
    ) -> tuple[str, str]:
        """(Encrypt, msg_signature) for `xml`, as WeChat would send it (§3.5)."""
        encrypt_b64 = self.encrypt(xml, random16, key_index)
        return encrypt_b64, sign(self.token, timestamp, nonce, encrypt_b64)

    def encrypt_reply(
        self,
        xml: str | bytes,
        timestamp: str,
        nonce: str,
        random16: bytes | None = None,
        key_index: int = 0,
    ) -> str:
        """The encrypted reply envelope of §3.6: Encrypt, MsgSignature, TimeStamp, Nonce."""
        # TimeStamp is written bare, so it must be digits to keep the XML well formed.
        if not isinstance(timestamp, str) or not _TIMESTAMP_RE.fullmatch(timestamp):
            raise ValueError("timestamp must be decimal digits")
        encrypt_b64, msg_signature = self.encrypt_message(
            xml, timestamp, nonce, random16, key_index
        )
        return (
            "<xml>\n"
            f"<Encrypt>{cdata(encrypt_b64)}</Encrypt>\n"
            f"<MsgSignature>{cdata(msg_signature)}</MsgSignature>\n"
            f"<TimeStamp>{timestamp}</TimeStamp>\n"
            f"<Nonce>{cdata(nonce)}</Nonce>\n"
            "</xml>"
        )
