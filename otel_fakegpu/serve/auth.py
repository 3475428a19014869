"""HTTP basic auth against bcrypt hashes, with verified credentials remembered so that a scraper sending
the same password every 15 s costs one bcrypt check, not one per scrape.

Every refusal costs what checking a known user costs: an unknown user, or a password bcrypt cannot take
(over 72 bytes), is checked against a configured hash and refused whatever the answer, so the time of a
refusal does not tell which user names exist.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import os
import re
from collections.abc import Mapping

import bcrypt

log = logging.getLogger(__name__)

_MAX_REMEMBERED = 1024
MAX_PASSWORD_BYTES = 72  # bcrypt reads no further; a longer password cannot be the one that was hashed
MIN_BCRYPT_COST, MAX_BCRYPT_COST = 4, 16  # 16 is ~5 s per check here; 31 would be days
_BCRYPT_HASH = re.compile(rb"\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}")


class HashError(ValueError):
    """A basic-auth hash that bcrypt cannot check, or one that would take too long to."""


def check_hash(hashed: bytes) -> None:
    """Raise HashError unless ``hashed`` is a well-formed bcrypt hash of a sane cost."""
    match = _BCRYPT_HASH.fullmatch(hashed)
    if match is None:
        raise HashError("needs a bcrypt hash ($2a$/$2b$/$2y$...)")
    cost = int(match[1])
    if not MIN_BCRYPT_COST <= cost <= MAX_BCRYPT_COST:
        raise HashError(f"has bcrypt cost {cost}, outside {MIN_BCRYPT_COST}-{MAX_BCRYPT_COST}")


class BasicAuth:
    def __init__(self, users: Mapping[str, bytes]) -> None:
        for hashed in users.values():
            check_hash(hashed)
        self._users = dict(users)
        # Checked for refusals: the costliest configured hash, so no refusal is quicker than a real check.
        self._decoy = max(self._users.values(), key=lambda h: h[4:6], default=b"")
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
        if hashed is not None and len(password) <= MAX_PASSWORD_BYTES:
            digest = hashlib.sha256(self._salt + user.encode() + b"\0" + password + b"\0" + hashed).digest()
            if any(hmac.compare_digest(digest, known) for known in self._verified):
                return True
            ok = await self._bcrypt(password, hashed)
            if ok:
                if len(self._verified) >= _MAX_REMEMBERED:
                    self._verified.clear()
                self._verified.add(digest)
            return ok
        await self._bcrypt(password[:MAX_PASSWORD_BYTES], self._decoy)  # the same cost, answer ignored
        return False

    async def _bcrypt(self, password: bytes, hashed: bytes) -> bool:
        if not hashed:
            return False
        try:
            return await asyncio.get_running_loop().run_in_executor(None, bcrypt.checkpw, password, hashed)
        except ValueError as exc:  # checked at load; a refusal, never a 500
            log.warning("basic auth: bcrypt refused a check: %s", exc)
            return False


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
