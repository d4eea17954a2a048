"""Client-side limits of a live run: concurrency, requests and tokens per minute (a model card's own limits win
where they are tighter), retries and backoff; token estimates for plans."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass

from .cards import ModelCard

MESSAGE_OVERHEAD_TOKENS = 8  # role markers and the like, for estimates only


@dataclass
class Limits:
    """Client-side limits; a model card's own limits win where they are tighter."""

    concurrency: int = 8
    rpm: float | None = None
    tpm: float | None = None
    timeout_s: float = 120.0  # total deadline of one attempt: connect, send, wait, read the whole body
    max_retries: int = 5
    max_reasks: int = 2
    backoff_base_s: float = 0.5
    backoff_max_s: float = 60.0
    max_retry_after_s: float = 120.0  # a longer Retry-After is capped to this (our choice), and announced


class RateLimiter:
    """Sliding one-minute window over requests and (estimated) tokens."""

    def __init__(self, rpm: float | None, tpm: float | None):
        self.rpm, self.tpm = rpm, tpm
        self._events: deque[tuple[float, float]] = deque()
        self._lock = asyncio.Lock()

    async def acquire(self, tokens: float) -> None:
        if not self.rpm and not self.tpm:
            return
        async with self._lock:
            while True:
                now = time.monotonic()
                while self._events and now - self._events[0][0] >= 60.0:
                    self._events.popleft()
                used_tokens = sum(t for _, t in self._events)
                ok_r = not self.rpm or len(self._events) < self.rpm
                ok_t = not self.tpm or used_tokens + tokens <= self.tpm or not self._events
                if ok_r and ok_t:
                    self._events.append((now, tokens))
                    return
                await asyncio.sleep(max(0.01, 60.0 - (now - self._events[0][0])))


def effective_limits(limits: Limits, card: ModelCard) -> tuple[int, float | None, float | None]:
    """(concurrency, requests per minute, tokens per minute) for one model: the tighter of the runner's and the card's."""
    concurrency = min(limits.concurrency, card.concurrency or limits.concurrency)
    if card.provider == "llama_cpp":
        concurrency = 1  # one llama.cpp server answers one request at a time (a pool has several servers)

    def tighter(a: float | None, b: float | None) -> float | None:
        given = [x for x in (a, b) if x]
        return min(given) if given else None

    return max(1, concurrency), tighter(limits.rpm, card.rpm), tighter(limits.tpm, card.tpm)


def estimate_tokens(text: str) -> int:
    """Rough token count (4 characters a token), for limits and cost estimates only."""
    return max(1, len(text) // 4)
