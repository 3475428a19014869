"""HTTP basic auth against bcrypt hashes, with verified credentials remembered so that a scraper sending
the same password every 15 s costs one bcrypt check, not one per scrape."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Mapping

import bcrypt

_MAX_REMEMBERED = 1024


class BasicAuth:
    def __init__(self, users: Mapping[str, bytes]) -> None:
        self._users = dict(users)
        self._salt = os.urandom(16)  # remembered digests are useless outside this process
        self._verified: set[bytes] = set()

    @property
    def enabled(self) -> bool:
        return bool(self._users)

    async def check(self, authorization: str | None) -> bool:
        """True when the ``Authorization`` header carries a configured user and its password."""
        credentials = _decode(authorization)
        if credentials is None:
            return False
        user, password = credentials
        hashed = self._users.get(user)
        if hashed is None:
            return False
        digest = hashlib.sha256(self._salt + user.encode() + b"\0" + password + b"\0" + hashed).digest()
        if any(hmac.compare_digest(digest, known) for known in self._verified):
            return True
        ok = await asyncio.get_running_loop().run_in_executor(None, bcrypt.checkpw, password, hashed)
        if ok:
            if len(self._verified) >= _MAX_REMEMBERED:
                self._verified.clear()
            self._verified.add(digest)
        return ok


def _decode(authorization: str | None) -> tuple[str, bytes] | None:
    if not authorization:
        return None
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    if not sep:
        return None
    try:
        return user.decode(), password
    except UnicodeDecodeError:
        return None
