"""API keys: random tokens, stored as SHA-256 digests, with a scope: write or admin."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Final, Literal

import asyncpg

from service.sql import QUERIES as Q
from service.store import Conn

Scope = Literal["write", "admin"]
SCOPES: Final = ("write", "admin")
_PREFIX: Final = "hn_"


@dataclass(frozen=True, slots=True)
class Caller:
    name: str
    scope: Scope

    def may(self, needed: Scope) -> bool:
        return self.scope == "admin" or needed == "write"


def new_key() -> str:
    return _PREFIX + secrets.token_urlsafe(32)


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


async def create(conn: Conn, name: str, scope: Scope) -> str:
    key = new_key()
    await conn.execute(Q["key_create"], name, digest(key), scope)
    return key


async def revoke(conn: Conn, name: str) -> bool:
    return await conn.fetchval(Q["key_revoke"], name) is not None


async def listing(conn: Conn) -> list[asyncpg.Record]:
    return list(await conn.fetch(Q["key_list"]))


def bootstrap(key: str, bootstrap_key: str | None) -> Caller | None:
    """The caller of the bootstrap key (HIRING_NEWS_BOOTSTRAP_KEY), known without the database."""
    if bootstrap_key is not None and hmac.compare_digest(key.encode(), bootstrap_key.encode()):
        return Caller("bootstrap", "admin")
    return None


async def identify(conn: Conn, key: str, bootstrap_key: str | None) -> Caller | None:
    """Who holds this key, looked up on every request so a revocation counts at once."""
    caller = bootstrap(key, bootstrap_key)
    if caller is not None:
        return caller
    # The lookup is by digest: comparing digests of 256-bit random keys leaks nothing
    # useful through timing, and the key itself never reaches the database or the log.
    row = await conn.fetchrow(Q["key_by_hash"], digest(key))
    return None if row is None else Caller(row["name"], row["scope"])


def key_from_headers(authorization: str | None, x_api_key: str | None) -> str | None:
    if x_api_key:
        return x_api_key.strip()
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return None
