"""Encrypts web tokens at rest (AES-GCM, key derived from WX_COOKIE_SECRET) so a database dump holds no usable token."""

from __future__ import annotations

import base64
import json
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class Sealer:
    def __init__(self, cookie_secret: str):
        # A separate key per purpose: the cookie secret itself never touches stored data.
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"wxauth web-token seal v1").derive(
            cookie_secret.encode("utf-8"))
        self._aead = AESGCM(key)

    def seal(self, data: dict) -> str:
        nonce = os.urandom(12)
        blob = self._aead.encrypt(nonce, json.dumps(data, separators=(",", ":")).encode(), b"wxauth")
        return base64.urlsafe_b64encode(nonce + blob).decode("ascii")

    def open(self, sealed: str) -> dict | None:
        """The sealed dict, or None if it was sealed with another secret or tampered with."""
        try:
            raw = base64.urlsafe_b64decode(sealed.encode("ascii"))
            return json.loads(self._aead.decrypt(raw[:12], raw[12:], b"wxauth"))
        except (ValueError, InvalidTag, TypeError):
            return None
