"""Rate limits: one token bucket per API key, or per client address without a key.

A bucket holds up to `per_minute` tokens and refills at `per_minute / 60` a second, so a
client may burst a minute's worth and then goes at the steady rate. The buckets live in
the process: with N replicas a client gets up to N times the limit, which is the price
of needing no shared store; put a shared limiter in the load balancer if that matters.

The answers carry the headers of draft-ietf-httpapi-ratelimit-headers-07:
`RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (seconds until the bucket is
full again) and `RateLimit-Policy` (`100;w=60`); a refusal adds `Retry-After` (seconds
until the next token).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

MAX_BUCKETS: Final = 10_000
# Where the guard leaves a request's RateLimit headers (in the ASGI scope's state) for the
# middleware to add to whatever answer goes out.
STATE_KEY: Final = "rate_limit_headers"


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset: int
    retry_after: int

    def headers(self) -> dict[str, str]:
        found = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset),
            "RateLimit-Policy": f"{self.limit};w=60",
        }
        if not self.allowed:
            found["Retry-After"] = str(self.retry_after)
        return found


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class Limiter:
    """Token buckets by name; `take` spends one token or says how long to wait."""

    def __init__(
        self, per_minute: int, *, clock: Callable[[], float] = time.monotonic, max_buckets: int = MAX_BUCKETS
    ) -> None:
        self.per_minute = per_minute
        self._rate = per_minute / 60
        self._clock = clock
        self._max_buckets = max_buckets
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    def take(self, who: str) -> Verdict:
        now = self._clock()
        bucket = self._buckets.pop(who, None)
        if bucket is None:
            bucket = _Bucket(float(self.per_minute), now)
            self._make_room(now)
        bucket.tokens = min(float(self.per_minute), bucket.tokens + (now - bucket.at) * self._rate)
        bucket.at = now
        allowed = bucket.tokens >= 1
        if allowed:
            bucket.tokens -= 1
        # Most recently used last, so the oldest are the first to go when room is needed.
        self._buckets[who] = bucket
        return Verdict(
            allowed=allowed,
            limit=self.per_minute,
            remaining=math.floor(bucket.tokens),
            reset=math.ceil((self.per_minute - bucket.tokens) / self._rate),
            retry_after=0 if allowed else max(1, math.ceil((1 - bucket.tokens) / self._rate)),
        )

    def _make_room(self, now: float) -> None:
        """Keep memory bounded when many names come by (a spray of made-up keys, say).

        A bucket that has refilled completely is the same as a new one, so dropping it
        changes nothing; only if there are still too many are the least recently used
        dropped, which can only make the limit more lenient for them.
        """
        if len(self._buckets) < self._max_buckets:
            return
        for name, bucket in list(self._buckets.items()):
            if bucket.tokens + (now - bucket.at) * self._rate >= self.per_minute:
                del self._buckets[name]
        while len(self._buckets) >= self._max_buckets:
            self._buckets.popitem(last=False)

    def __len__(self) -> int:
        return len(self._buckets)
