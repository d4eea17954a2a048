"""One async LLM client for every OpenAI-compatible endpoint, backed by the response store.

``LLMRunner.run(requests)`` returns one final record per request. In ``replay`` mode it never
calls out and a request missing from the store is an error naming it. In ``live`` mode it
calls only for the misses, with a concurrency limit, requests- and tokens-per-minute limits,
retries with exponential backoff that honour ``Retry-After`` up to a cap (429, 5xx, timeouts,
malformed responses), a total deadline per attempt, and bounded re-asks when an answer is
unusable (empty, or refused by the caller's ``validator``). Every attempt, failed or not, is
written to the store as it happens, so a killed run resumes without losing or repeating a
completed call.

Each request is isolated: whatever one response holds (a body that is not JSON, content that is
a list, a lone surrogate, a validator that raises), it becomes that request's own error record,
with the raw body, and the other requests go on. Only a store that cannot be written stops a
run. A live run holds the store's run lock, checks every key it needs before its first call,
redacts those keys from everything it stores, and raises ``AllCallsFailed`` when nothing it
asked for succeeded.
"""

# Over 600 lines: the live call loop is one state machine (concurrency, rate limits, retries with backoff,
# re-asks, budget, resume from the store); its parts share the per-request state.

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx2
import openai

from ..core.display import Report
from ..core.errors import RunFailed, UserError
from .cards import ModelCard, check_keys
from .limits import Limits, RateLimiter, effective_limits
from .request import Request
from .store import ResponseStore, StoreMiss, request_key
from .wire import describe_failure, parse_completion, redact_record, redactor, request_body, retry_after

MODES = ("replay", "live")
# What a live run asks again only when told to (``--retry-failed`` etc., or VALUELEX_RETRY=failed,lost):
# failed: requests given up after an attempt that may have been paid; damaged: requests whose only record
# is damaged; lost: requests whose call was sent by a run killed before the answer was stored.
RETRY_CHOICES = ("failed", "damaged", "lost")
RETRY_ENV = "VALUELEX_RETRY"
ANNOUNCE_WAIT_S = 10.0  # a server-requested wait at least this long is announced on stderr


@dataclass(repr=False)
class RunReport(Report):
    """What a run did: store hits, calls made, failures, tokens and cost per model (prints as a report)."""

    requested: int = 0
    hits: int = 0
    calls: int = 0  # answers received (HTTP 200 with a completion)
    failed_attempts: int = 0
    unusable_final: int = 0
    sent: int = 0  # requests asked in this run
    failed: int = 0  # ... that ended in an error record
    errors: Counter = field(default_factory=Counter)  # final error types
    per_model: dict[str, dict[str, float]] = field(default_factory=dict)

    def add_usage(self, model: str, prompt_tokens: int, completion_tokens: int, cost: float) -> None:
        m = self.per_model.setdefault(model, {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0})
        m["calls"] += 1
        m["prompt_tokens"] += prompt_tokens
        m["completion_tokens"] += completion_tokens
        m["cost_usd"] += cost

    @property
    def title(self) -> str:  # type: ignore[override]
        return f"LLM calls: {self.requested:,} requests, {self.hits:,} from the store, {self.calls:,} answered now"

    def sections(self) -> list[tuple[str, Any]]:
        counts = {
            "requests": self.requested,
            "answered from the store": self.hits,
            "asked in this run": self.sent,
            "answers received": self.calls,
            "failed attempts": self.failed_attempts,
            "ended in an error": self.failed,
            "unusable after re-asks": self.unusable_final,
        }
        parts: list[tuple[str, Any]] = [("", counts)]
        if self.errors:
            parts.append(("Final errors", {kind: n for kind, n in sorted(self.errors.items())}))
        if self.per_model:
            import pandas as pd

            usage = pd.DataFrame.from_dict(self.per_model, orient="index").rename_axis("model")
            parts.append(
                ("Usage per model", usage.astype({"calls": int, "prompt_tokens": int, "completion_tokens": int}))
            )
        return parts

    def metrics(self) -> dict[str, Any]:
        return {
            "requested": self.requested,
            "hits": self.hits,
            "calls": self.calls,
            "failed": self.failed,
            "errors": dict(self.errors),
            "per_model": {m: dict(u) for m, u in self.per_model.items()},
        }


@dataclass
class Plan:
    """A dry run: what a live run would call, and what it would cost at list price.

    Requests a live run does not ask again unless told to are counted apart (``held``): those whose
    only record is damaged, those whose call was lost in flight when a run was killed, and those
    given up after an attempt that may have been paid.
    """

    requested: int
    stored: int
    to_call: int
    est_prompt_tokens: int
    est_completion_tokens: int
    est_cost_usd: float
    per_model: dict[str, dict[str, float]]
    damaged: int = 0  # not asked: the only stored record is damaged (--retry-damaged asks them)
    lost: int = 0  # not asked: sent by a run killed before the answer was stored (--retry-lost)
    given_up: int = 0  # stored as a final error after a maybe-paid attempt (--retry-failed asks them)

    @property
    def held(self) -> int:
        """Requests without a usable stored answer that a live run does not ask (damaged or lost)."""
        return self.damaged + self.lost

    def __str__(self) -> str:
        lines = [
            f"{self.requested} requests: {self.stored} already stored, {self.to_call} to call; "
            f"at most ~{self.est_prompt_tokens:,} prompt + {self.est_completion_tokens:,} completion tokens, "
            f"estimated cost at list price ${self.est_cost_usd:,.2f}"
        ]
        if self.damaged:
            lines.append(
                f"  {self.damaged} not asked: their only record in the store is damaged (listed when it was "
                "loaded); repair the lines, or pass --retry-damaged to pay for them again"
            )
        if self.lost:
            lines.append(
                f"  {self.lost} not asked: their call was sent by a run killed before the answer was stored "
                "(maybe paid); pass --retry-lost to ask them again"
            )
        if self.given_up:
            lines.append(
                f"  {self.given_up} of the stored are errors given up after a maybe-paid attempt; "
                "--retry-failed asks them again"
            )
        for model, m in sorted(self.per_model.items()):
            lines.append(f"  {model}: {int(m['to_call'])} calls, ${m['cost_usd']:,.2f}")
        return "\n".join(lines)


class AllCallsFailed(RunFailed):
    """A live run asked for answers and every request ended in an error."""


class NoUsableAnswers(RunFailed):
    """Not one of the requests has a usable answer (every answer empty, refused by the validator, or an error)."""


class UnansweredRequests(UserError, LookupError):
    """A live run left requests unanswered on purpose: damaged records or lost calls, which are asked only
    when the user says so (they may be paid twice)."""


def retry_choices(value: Iterable[str] | str | None = None) -> frozenset[str]:
    """The retry choices: given, or from ``VALUELEX_RETRY`` (comma-separated), checked against RETRY_CHOICES."""
    if value is None:
        value = os.environ.get(RETRY_ENV, "")
    items = [v.strip() for v in value.split(",")] if isinstance(value, str) else list(value)
    chosen = frozenset(v for v in items if v)
    unknown = sorted(chosen - set(RETRY_CHOICES))
    if unknown:
        raise UserError(f"{RETRY_ENV}: unknown retry choice {unknown[0]!r} (choices: {', '.join(RETRY_CHOICES)})")
    return chosen


def default_validator(text: str | None) -> bool:
    """An answer is usable when it has some non-blank text."""
    return bool(text and text.strip())


def _run_coroutine(coro: Any) -> Any:
    """Run a coroutine from sync code, also inside Jupyter (which already runs a loop)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _say(message: str) -> None:
    """Tell the user something about the run (stderr, which a notebook shows), without breaking the progress bar."""
    from tqdm.auto import tqdm

    tqdm.write(message, file=sys.stderr)


class LLMRunner:
    """Ask many requests of many models, through the store.

    Which requests a live run asks (the others come from the store):

    - no stored record: asked;
    - a final answer: never asked again;
    - a final error: asked again when none of its attempts may have been paid (every attempt was
      refused before a model ran: connection refused, an HTTP error status, a request we could not
      build), so a wrong key or a server that was down costs nothing to fix; after an attempt that may
      have been paid (a malformed 200, a timeout, a dropped connection) the error is a *give-up* that
      later runs keep: ``retry`` "failed" asks it again;
    - only damaged records: not asked (it was answered once; the damage is reported with file and
      line): ``retry`` "damaged" asks it again;
    - a call sent by a run that was killed before its answer was stored (an intent without outcome):
      not asked (it may have been paid): ``retry`` "lost" asks it again.

    A live run that leaves damaged or lost requests unasked asks every other one first, then raises
    ``UnansweredRequests`` naming them and the choice that asks them.
    """

    def __init__(
        self,
        cards: dict[str, ModelCard],
        store: ResponseStore,
        mode: str = "replay",
        limits: Limits | None = None,
        validator: Callable[[str | None], bool] = default_validator,
        endpoints: dict[str, str | list[str]] | None = None,
        progress: bool = True,
        retry: Iterable[str] | str | None = None,
    ):
        """``retry``: any of RETRY_CHOICES (see the class); None reads ``VALUELEX_RETRY``, which
        ``valuelex run --retry-failed`` (and ``--retry-damaged``, ``--retry-lost``) sets."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.cards, self.store, self.mode = cards, store, mode
        self.limits = limits or Limits()
        self.validator = validator
        self.endpoints = dict(endpoints or {})
        self.progress = progress
        self.retry = retry_choices(retry)
        self.report = RunReport()
        self._secrets: list[str] = []
        self._redactor = redactor(())

    # planning ------------------------------------------------------------------------
    def _card(self, request: Request) -> ModelCard:
        try:
            return self.cards[request.model]
        except KeyError:
            raise KeyError(f"no model card for {request.model!r} (known: {', '.join(sorted(self.cards))})") from None

    def state(self, key: str) -> str:
        """What the store holds for a request, as a live run sees it: "answered", "given_up" (a final error
        after a maybe-paid attempt), "failed" (a final error that cost nothing), "damaged", "lost" or "new"."""
        stored = self.store.get(key)
        if stored is not None:
            if stored["status"] != "error":
                return "answered"
            return "given_up" if self.store.maybe_paid(key) else "failed"
        if self.store.damaged(key):  # first: a damaged outcome leaves its intent without outcome too
            return "damaged"
        if self.store.lost(key):
            return "lost"
        return "new"

    def _asks(self, state: str) -> bool:
        """Whether a live run asks a request in this state."""
        if state in ("new", "failed"):
            return True
        return {"given_up": "failed", "damaged": "damaged", "lost": "lost"}.get(state, "") in self.retry

    def misses(self, requests: Sequence[Request], keys: Sequence[str] | None = None) -> list[Request]:
        """Requests to call, without duplicates: in replay, those without a final record; in live mode,
        those the rules of the class ask. ``keys`` are the requests' keys, if already computed."""
        if keys is None:
            keys = [r.key(self._card(r)) for r in requests]
        seen: set[str] = set()
        out = []
        live = self.mode == "live"
        for r, k in zip(requests, keys, strict=True):
            if k in seen:
                continue
            stored = self.store.get(k)
            if stored is not None and (not live or stored["status"] != "error"):
                continue  # the common case, without classifying
            if stored is None and not live or live and self._asks(self.state(k)):
                seen.add(k)
                out.append(r)
        return out

    def plan(self, requests: Sequence[Request]) -> Plan:
        """Dry run: how many calls a live run makes, their worst-case tokens and cost, and what it holds back."""
        keys = [r.key(self._card(r)) for r in requests]
        states = Counter(self.state(k) for k in dict.fromkeys(keys))
        misses = self.misses(requests, keys)
        per_model: dict[str, dict[str, float]] = {}
        tp = tc = 0
        cost = 0.0
        for r in misses:
            card = self._card(r)
            p, n = r.estimated_tokens()
            tp += p
            tc += n
            c = card.cost(p, n)
            cost += c
            m = per_model.setdefault(r.model, {"to_call": 0, "cost_usd": 0.0})
            m["to_call"] += 1
            m["cost_usd"] += c
        held = {s: 0 if self._asks(s) else states[s] for s in ("damaged", "lost", "given_up")}
        stored = len(requests) - len(misses) - held["damaged"] - held["lost"]
        return Plan(len(requests), stored, len(misses), tp, tc, cost, per_model, **held)

    def _describe_miss(self, r: Request) -> str:
        key = r.key(self._card(r))
        damaged = self.store.damaged(key)
        if damaged:
            return f"{r.describe()}: its only record is damaged ({damaged[-1]})"
        lost = self.store.lost(key)
        if lost:
            return f"{r.describe()}: sent by a run killed before its answer was stored (attempt {lost[-1]})"
        return r.describe()

    # running -------------------------------------------------------------------------
    def run(self, requests: Sequence[Request]) -> list[dict[str, Any]]:
        """Final records in the order of ``requests`` (sync; also works inside Jupyter)."""
        return _run_coroutine(self.arun(requests))

    async def arun(self, requests: Sequence[Request]) -> list[dict[str, Any]]:
        requests = list(requests)
        keys = [r.key(self._card(r)) for r in requests]
        misses = self.misses(requests, keys)
        if misses and self.mode == "replay":
            shown = "\n  ".join(self._describe_miss(r) for r in misses[:5])
            more = f"\n  ... and {len(misses) - 5} more" if len(misses) > 5 else ""
            raise StoreMiss(
                f"replay mode: {len(misses)} of {len(requests)} requests are not in the store "
                f"{self.store.root}:\n  {shown}{more}\nRun in live mode to make these calls."
            )
        if misses:
            # every key this call needs, before the first paid call; kept to redact them from what is stored
            self._secrets = check_keys({r.model: self._card(r) for r in misses})
            self._redactor = redactor(self._secrets)
            with self.store.run_lock():
                self.store.reload()  # another run may have answered some since this store was loaded
                misses = self.misses(requests, keys)
                if misses:
                    await self._call_all(misses)
            self._check_outcome(misses)
        self.report.requested += len(requests)
        self.report.hits += len(requests) - len(misses)
        records = [self.store.get(k) for k in keys]
        if self.mode == "live":
            self._check_unanswered(requests, records)
        usable = sum(bool(rec and rec.get("usable")) for rec in records)
        if requests and not usable:
            kinds = Counter(_outcome(rec) for rec in records)
            summary = ", ".join(f"{kind} x{n}" for kind, n in kinds.most_common())
            raise NoUsableAnswers(
                f"not one of the {len(requests)} requests has a usable answer ({summary}); check the model, its "
                f"prompt template and max_tokens (the answers are in {self.store.root})"
            )
        return records  # type: ignore[return-value]

    def _check_unanswered(self, requests: list[Request], records: list[dict[str, Any] | None]) -> None:
        """Raise UnansweredRequests for the requests a live run held back (damaged, lost), naming them."""
        held = list({id(r): r for r, rec in zip(requests, records, strict=True) if rec is None}.values())
        if not held:
            return
        kinds = Counter(self.state(r.key(self._card(r))) for r in held)
        shown = "\n  ".join(self._describe_miss(r) for r in held[:5])
        more = f"\n  ... and {len(held) - 5} more" if len(held) > 5 else ""
        choices = " and ".join(f"--retry-{kind}" for kind in sorted(kinds))
        raise UnansweredRequests(
            f"{len(held)} of {len(requests)} requests were not asked and have no answer in the store "
            f"{self.store.root} (every other request was asked):\n  {shown}{more}\n"
            f"Asking them again may pay for them twice: run again with {choices} to do so "
            f"(or {RETRY_ENV}={','.join(sorted(kinds))})."
        )

    def _check_outcome(self, sent: list[Request]) -> None:
        """Announce the requests that ended in an error; raise AllCallsFailed if none succeeded."""
        finals = [self.store.get(r.key(self._card(r))) for r in sent]
        failed = [f for f in finals if f is None or f["status"] == "error"]
        if not failed:
            return
        kinds = Counter((f or {}).get("error", {}).get("type", "not stored") for f in failed)
        first = next((f["error"].get("message") for f in failed if f), "")
        summary = ", ".join(f"{kind} x{n}" for kind, n in kinds.most_common())
        given_up = sum(bool(f) and self.store.maybe_paid(f["key"]) for f in failed)
        parts = []
        if len(failed) > given_up:
            parts.append(f"the next live run asks again the {len(failed) - given_up} that cost nothing")
        if given_up:
            parts.append(f"the {given_up} given up after a maybe-paid attempt are asked again only with --retry-failed")
        again = "; ".join(parts)
        if len(failed) == len(sent):
            raise AllCallsFailed(
                f"every one of the {len(sent)} requests of this live run failed ({summary}; e.g. {first!r}). "
                f"Each attempt is stored in {self.store.root}; fix the cause (key, base_url, model id) and run "
                f"again: {again}."
            )
        _say(f"{len(failed)} of {len(sent)} requests ended in an error ({summary}); they are stored, and {again}")

    async def _call_all(self, misses: list[Request]) -> None:
        from tqdm.auto import tqdm

        by_model: dict[str, list[Request]] = {}
        for r in misses:
            by_model.setdefault(r.model, []).append(r)
        bar = tqdm(total=len(misses), desc="LLM calls", disable=not self.progress, unit="call")
        simulated = any(self.cards[m].provider == "simulated" and m not in self.endpoints for m in by_model)
        if simulated:  # one simulated server for all the models of this batch, stopped after it
            from .simulated import SimulatedServers
        try:
            async with SimulatedServers() if simulated else contextlib.nullcontext() as servers:
                for model, reqs in by_model.items():
                    card = self.cards[model]
                    async with self._endpoint(card, servers) as base_url:
                        await self._call_model(card, base_url, reqs, bar)
        finally:
            bar.close()

    def _endpoint(self, card: ModelCard, simulated: Any = None) -> Any:
        if card.name in self.endpoints:
            return _Fixed(self.endpoints[card.name])
        if card.provider == "llama_cpp":
            from .local import LlamaServerPool

            return LlamaServerPool.for_card(card)
        if card.provider == "simulated":  # valuelex.simulated: its server is started by the run, like llama.cpp's
            return simulated.endpoint(card)
        return _Fixed(card.base_url or "")

    async def _call_model(self, card: ModelCard, base_url: str | list[str], reqs: list[Request], bar: Any) -> None:
        """Ask ``reqs`` of one model at ``base_url`` (several URLs: servers of the same model, ``concurrency`` each)."""
        urls = [base_url] if isinstance(base_url, str) else list(base_url)
        concurrency, rpm, tpm = effective_limits(self.limits, card)
        limiter = RateLimiter(rpm, tpm)
        clients = []
        for url in urls:
            # The SDK's aiohttp transport: the same SDK and request path, with about half the CPU per call of
            # the default httpx transport, whose connection pool also costs O(connections) per request
            # (profiled at concurrency 32, where CPU per call sets the throughput; benchmarks/bench_llm.py).
            http = openai.DefaultAioHttpClient(
                limits=httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
                timeout=httpx2.Timeout(self.limits.timeout_s, connect=min(10.0, self.limits.timeout_s)),
            )
            clients.append(
                openai.AsyncOpenAI(
                    base_url=url, api_key=card.api_key(), max_retries=0, timeout=self.limits.timeout_s, http_client=http
                )
            )
        # Several servers of one model: each gets a contiguous share of the requests, in order, so what a
        # server has evaluated before a request (its cached prompt prefix) does not depend on timing.
        queues: list[asyncio.Queue[Request]] = []
        for share in _contiguous_shares(reqs, len(clients)):
            queue: asyncio.Queue[Request] = asyncio.Queue()
            for r in share:
                queue.put_nowait(r)
            queues.append(queue)

        async def worker(client: openai.AsyncOpenAI, queue: asyncio.Queue[Request]) -> None:
            while True:
                try:
                    r = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                await self._call_one(client, card, r, limiter)
                bar.update(1)

        try:
            # A TaskGroup: if a worker fails (only a store that cannot be written makes one fail), the
            # others are cancelled and awaited before the client closes; nothing is sent on a closed client.
            async with asyncio.TaskGroup() as group:
                for client, queue in zip(clients, queues, strict=True):
                    for _ in range(min(concurrency, queue.qsize())):
                        group.create_task(worker(client, queue))
        except BaseExceptionGroup as failures:
            raise failures.exceptions[0] from None
        finally:
            for client in clients:
                await client.close()

    def _store(self, record: dict[str, Any]) -> None:
        self.store.append(redact_record(record, self._redactor))

    async def _call_one(self, client: openai.AsyncOpenAI, card: ModelCard, r: Request, limiter: RateLimiter) -> None:
        """Ask one request until it has a final record; never raises for anything the server sends."""
        canon = r.canonical(card)
        k = request_key(canon)
        est = sum(r.estimated_tokens())
        self.report.sent += 1
        retries = reasks = 0
        attempt = self.store.last_attempt(k)  # attempts go on from the last stored one (a resumed request)
        try:
            path, body = request_body(card, r)
        except Exception as exc:  # noqa: BLE001 - a request that cannot be built is its own error, never sent
            path, body, build_error = "", {}, exc
        else:
            build_error = None
        while True:
            attempt += 1
            started = time.monotonic()
            raw: bytes | None = None
            result: dict[str, Any] | None = None
            try:
                if build_error is not None:
                    raise build_error
                await limiter.acquire(est)
                # the write-ahead intent: should this process die before the outcome is stored, the next
                # run knows this call left (and may have been paid) and does not send it again unasked
                self.store.append({"key": k, "request": canon, "attempt": attempt, "status": "sent", "final": False,
                                   "timestamp": _now()})  # fmt: skip
                started = time.monotonic()
                async with asyncio.timeout(self.limits.timeout_s):
                    raw = await client.post(path, body=body, cast_to=bytes)
                result = parse_completion(raw, card.api)
                usable = bool(self.validator(result["text"]))
                final = usable or reasks >= self.limits.max_reasks
                cost = card.cost(**result["usage"])
                record = {
                    "key": k,
                    "request": canon,
                    "attempt": attempt,
                    "status": "ok",
                    "final": final,
                    "usable": usable,
                    **result,
                    "cost_usd": cost,
                    "latency_s": round(time.monotonic() - started, 4),
                    "timestamp": _now(),
                    "error": None,
                }
                self._store(record)  # a record the store refuses (a bug of ours) becomes this request's error
            except Exception as exc:  # noqa: BLE001 - every failure is this request's own record
                info, retry = describe_failure(exc, raw, self._redactor, self.limits.timeout_s)
                self.report.failed_attempts += 1
                give_up = not retry or retries >= self.limits.max_retries
                record = {"key": k, "request": canon, "attempt": attempt, "status": "error", "final": give_up}
                record.update(usable=False, text=None, error=info)
                if result is not None:  # answered, and paid for, before it failed
                    record.update(usage=result["usage"], cost_usd=card.cost(**result["usage"]))
                record.update(latency_s=round(time.monotonic() - started, 4), timestamp=_now())
                self._store(record)
                if give_up:
                    self.report.unusable_final += 1
                    self.report.failed += 1
                    self.report.errors[info["type"]] += 1
                    return
                retries += 1
                await self._wait_before_retry(retries, exc, card)
                continue
            self.report.calls += 1
            self.report.add_usage(
                card.name, result["usage"]["prompt_tokens"], result["usage"]["completion_tokens"], cost
            )
            if final:
                if not usable:
                    self.report.unusable_final += 1
                return
            reasks += 1

    async def _wait_before_retry(self, retries: int, exc: BaseException, card: ModelCard) -> None:
        """Exponential backoff with jitter, or the server's Retry-After if longer (capped, and announced)."""
        backoff = min(self.limits.backoff_max_s, self.limits.backoff_base_s * 2 ** (retries - 1))
        backoff *= 0.5 + random.random()  # jitter
        asked = retry_after(exc)
        wait = backoff
        if asked is not None and asked > backoff:
            wait = min(asked, self.limits.max_retry_after_s)
            if asked >= ANNOUNCE_WAIT_S:
                capped = f", capped to {wait:g} s (Limits.max_retry_after_s)" if asked > wait else ""
                _say(f"{card.name}: the server asked to wait {asked:g} s before retrying (Retry-After){capped}")
        await asyncio.sleep(wait)


def _contiguous_shares(items: list[Request], n: int) -> list[list[Request]]:
    """``items`` cut into ``n`` contiguous parts whose sizes differ by at most one."""
    size, extra = divmod(len(items), n)
    out, start = [], 0
    for i in range(n):
        end = start + size + (i < extra)
        out.append(items[start:end])
        start = end
    return out


class _Fixed:
    """An endpoint that is already running (a remote API, or servers started elsewhere: a list of URLs)."""

    def __init__(self, url: str | list[str]):
        self.url = url

    async def __aenter__(self) -> str | list[str]:
        return self.url

    async def __aexit__(self, *exc: object) -> None:
        return None


def _outcome(record: dict[str, Any] | None) -> str:
    """A final record in a word, for summaries: its error type, "empty", "unusable", or "usable"."""
    if record is None:
        return "not stored"
    if record["status"] == "error":
        return record["error"]["type"]
    if record.get("usable"):
        return "usable"
    return "empty" if not (record.get("text") or "").strip() else "unusable"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
