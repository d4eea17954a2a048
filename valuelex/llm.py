"""One async LLM client for every OpenAI-compatible endpoint, backed by the response store.

``LLMRunner.run(requests)`` returns one final record per request. In ``replay`` mode it never
calls out and a request missing from the store is an error naming it. In ``live`` mode it
calls only for the misses, with a concurrency limit, requests- and tokens-per-minute limits,
retries with exponential backoff that honour ``Retry-After`` (429, 5xx, timeouts, malformed
responses), and bounded re-asks when an answer is unusable (empty, or refused by the
caller's ``validator``). Every attempt, failed or not, is written to the store as it
happens, so a killed run resumes without losing or repeating a completed call.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import email.utils
import json
import random
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx2
import openai
from openai.types import Completion
from openai.types.chat import ChatCompletion

from .config import ModelCard, Panel, Respondent, check_keys
from .store import ResponseStore, StoreMiss, request_key

MODES = ("replay", "live")
RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 529}
_KEYLIKE = re.compile(r"(sk-[A-Za-z0-9_\-]{6,}|Bearer\s+[A-Za-z0-9._\-]{6,})")


@dataclass(frozen=True)
class Request:
    """One call: a model, a conversation, decoding settings, and which sample it is."""

    model: str
    messages: tuple[tuple[str, str], ...]  # (role, content) pairs
    temperature: float
    top_p: float
    max_tokens: int
    seed: int | None = None
    sample: int = 0
    prompt_id: str = ""
    prompt_version: str = ""
    # Extra request parameters sent as they are, e.g. (("logprobs", True), ("top_logprobs", 20));
    # part of the key only when given, so requests without them keep their keys.
    extra: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def for_respondent(
        cls,
        respondent: Respondent,
        messages: Sequence[tuple[str, str]],
        *,
        max_tokens: int,
        sample: int = 0,
        prompt_id: str = "",
        prompt_version: str = "",
    ) -> Request:
        return cls(
            model=respondent.model,
            messages=tuple((r, c) for r, c in messages),
            temperature=respondent.temperature,
            top_p=respondent.top_p,
            max_tokens=max_tokens,
            seed=respondent.seed,
            sample=sample,
            prompt_id=prompt_id,
            prompt_version=prompt_version,
        )

    def canonical(self, card: ModelCard) -> dict[str, Any]:
        """What identifies the call: everything that can change the answer, nothing that cannot.

        The endpoint URL is left out on purpose (a local server's port changes per run);
        the served model id, the API kind and, for plain completions, the prompt template are in.
        """
        canon: dict[str, Any] = {
            "model": self.model,
            "model_id": card.model,
            "api": card.api,
            "messages": [{"role": r, "content": c} for r, c in self.messages],
            "params": {
                # floats, so a grid written as 1 or 1.0 gives the same key
                "temperature": float(self.temperature),
                "top_p": float(self.top_p),
                "max_tokens": self.max_tokens,
                "seed": self.seed,
            },
            "sample": self.sample,
            "prompt_id": self.prompt_id,
            "prompt_version": self.prompt_version,
        }
        if card.api == "completions":
            canon["prompt_template"] = card.prompt_template
            canon["stop"] = list(card.stop)
        if self.extra:
            canon["extra"] = dict(self.extra)
        return canon

    def key(self, card: ModelCard) -> str:
        return request_key(self.canonical(card))

    def describe(self) -> str:
        return (
            f"model={self.model} prompt={self.prompt_id}@{self.prompt_version} sample={self.sample} "
            f"temperature={self.temperature:g} top_p={self.top_p:g} seed={self.seed}"
        )


def respondent_columns(request: Request, card: ModelCard) -> dict[str, Any]:
    """Who answered a request: the respondent id and the model's description (table columns)."""
    respondent = Respondent(request.model, request.temperature, request.top_p, request.seed)
    return {
        "respondent": respondent.id,
        "model": request.model,
        "family": card.family,
        "params_b": card.params_b,
        "training_stage": card.training_stage,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "seed": request.seed,
    }


def panel_requests(
    panel: Panel,
    items: Sequence[tuple[str, Sequence[tuple[str, str]]]],
    version: str,
    *,
    models: Sequence[str] | None = None,
    respondents_per_model: int | None = None,
) -> list[Request]:
    """One request per respondent x instrument item x sample, in a stable order.

    ``items`` are (prompt id, messages) pairs: the elicitation prompts, or the projective stems.
    ``models`` keeps only those models; ``respondents_per_model`` only each model's first respondents.
    """
    keep = set(models if models is not None else panel.models)
    taken: dict[str, int] = {}
    requests = []
    for respondent in panel.respondents():
        if respondent.model not in keep:
            continue
        taken[respondent.model] = taken.get(respondent.model, 0) + 1
        if respondents_per_model and taken[respondent.model] > respondents_per_model:
            continue
        for prompt_id, messages in items:
            for sample in range(panel.samples):
                requests.append(
                    Request.for_respondent(
                        respondent,
                        messages,
                        max_tokens=panel.max_tokens,
                        sample=sample,
                        prompt_id=prompt_id,
                        prompt_version=version,
                    )
                )
    return requests


@dataclass
class Limits:
    """Client-side limits; a model card's own limits win where they are tighter."""

    concurrency: int = 8
    rpm: float | None = None
    tpm: float | None = None
    timeout_s: float = 120.0
    max_retries: int = 5
    max_reasks: int = 2
    backoff_base_s: float = 0.5
    backoff_max_s: float = 60.0


@dataclass
class RunReport:
    """What a run did: store hits, calls made, failures, tokens and cost per model."""

    requested: int = 0
    hits: int = 0
    calls: int = 0
    failed_attempts: int = 0
    unusable_final: int = 0
    per_model: dict[str, dict[str, float]] = field(default_factory=dict)

    def add_usage(self, model: str, prompt_tokens: int, completion_tokens: int, cost: float) -> None:
        m = self.per_model.setdefault(model, {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0})
        m["calls"] += 1
        m["prompt_tokens"] += prompt_tokens
        m["completion_tokens"] += completion_tokens
        m["cost_usd"] += cost


@dataclass
class Plan:
    """A dry run: what a live run would call, and what it would cost at list price."""

    requested: int
    stored: int
    to_call: int
    est_prompt_tokens: int
    est_completion_tokens: int
    est_cost_usd: float
    per_model: dict[str, dict[str, float]]

    def __str__(self) -> str:
        lines = [
            f"{self.requested} requests: {self.stored} already stored, {self.to_call} to call; "
            f"at most ~{self.est_prompt_tokens:,} prompt + {self.est_completion_tokens:,} completion tokens, "
            f"estimated cost at list price ${self.est_cost_usd:,.2f}"
        ]
        for model, m in sorted(self.per_model.items()):
            lines.append(f"  {model}: {int(m['to_call'])} calls, ${m['cost_usd']:,.2f}")
        return "\n".join(lines)


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


def estimate_tokens(text: str) -> int:
    """Rough token count (4 characters a token), for limits and cost estimates only."""
    return max(1, len(text) // 4)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Remove keys (the given values and anything key-shaped) from a message before it is stored."""
    for s in secrets:
        if s and len(s) >= 6:
            text = text.replace(s, "[REDACTED]")
    return _KEYLIKE.sub("[REDACTED]", text)


def _retry_after(exc: BaseException) -> float | None:
    """Seconds the server asked us to wait (``retry-after-ms``, ``Retry-After`` seconds or date), if any."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    try:
        if headers.get("retry-after-ms") is not None:
            return max(0.0, float(headers["retry-after-ms"]) / 1000.0)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(value)
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            return max(0.0, (parsed - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError, OverflowError):
        return None  # a header we cannot read is ignored, not fatal


class MalformedResponse(ValueError):
    """The server answered 200 but not with an OpenAI-shaped completion."""


# what a body that is not an OpenAI-shaped completion raises, in the SDK or in _send
_MALFORMED = (
    json.JSONDecodeError,
    openai.APIResponseValidationError,
    ValueError,
    KeyError,
    TypeError,
    IndexError,
    AttributeError,
)


def _error_info(exc: BaseException, secrets: Iterable[str]) -> tuple[dict[str, Any], bool]:
    """(error description for the store, whether to retry)."""
    status = getattr(exc, "status_code", None)
    if isinstance(exc, openai.APITimeoutError):
        kind, retry = "timeout", True
    elif isinstance(exc, openai.APIConnectionError):
        kind, retry = "connection", True
    elif isinstance(exc, openai.APIStatusError):
        kind, retry = f"http_{exc.status_code}", exc.status_code in RETRYABLE_STATUS
    elif isinstance(exc, _MALFORMED):
        kind, retry = "malformed_response", True
    else:
        kind, retry = type(exc).__name__, False
    message = redact(str(exc), secrets)[:500]
    return {"type": kind, "status_code": status, "message": message}, retry


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


class LLMRunner:
    """Ask many requests of many models, through the store."""

    def __init__(
        self,
        cards: dict[str, ModelCard],
        store: ResponseStore,
        mode: str = "replay",
        limits: Limits | None = None,
        validator: Callable[[str | None], bool] = default_validator,
        endpoints: dict[str, str] | None = None,
        progress: bool = True,
        retry_errors: bool = True,
    ):
        """``retry_errors``: in live mode, ask again the requests whose final record is an error
        (retries used up, a bad key); replay always returns stored errors as they are."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.cards, self.store, self.mode = cards, store, mode
        self.limits = limits or Limits()
        self.validator = validator
        self.endpoints = dict(endpoints or {})
        self.progress = progress
        self.retry_errors = retry_errors and mode == "live"
        self.report = RunReport()

    # planning ------------------------------------------------------------------------
    def _card(self, request: Request) -> ModelCard:
        try:
            return self.cards[request.model]
        except KeyError:
            raise KeyError(f"no model card for {request.model!r} (known: {', '.join(sorted(self.cards))})") from None

    def misses(self, requests: Sequence[Request], keys: Sequence[str] | None = None) -> list[Request]:
        """Requests to call: no final record, or (with ``retry_errors``, live mode) a final error.

        Without duplicates; ``keys`` are the requests' keys, if already computed.
        """
        if keys is None:
            keys = [r.key(self._card(r)) for r in requests]
        seen: set[str] = set()
        out = []
        for r, k in zip(requests, keys, strict=True):
            stored = self.store.get(k)
            answered = stored is not None and not (self.retry_errors and stored["status"] == "error")
            if not answered and k not in seen:
                seen.add(k)
                out.append(r)
        return out

    def plan(self, requests: Sequence[Request]) -> Plan:
        """Dry run: how many calls are needed, and their worst-case tokens and cost."""
        misses = self.misses(requests)
        per_model: dict[str, dict[str, float]] = {}
        tp = tc = 0
        cost = 0.0
        for r in misses:
            card = self._card(r)
            p = sum(estimate_tokens(c) for _, c in r.messages) + 8
            tp += p
            tc += r.max_tokens
            c = card.cost(p, r.max_tokens)
            cost += c
            m = per_model.setdefault(r.model, {"to_call": 0, "cost_usd": 0.0})
            m["to_call"] += 1
            m["cost_usd"] += c
        return Plan(len(requests), len(requests) - len(misses), len(misses), tp, tc, cost, per_model)

    # running -------------------------------------------------------------------------
    def run(self, requests: Sequence[Request]) -> list[dict[str, Any]]:
        """Final records in the order of ``requests`` (sync; also works inside Jupyter)."""
        return _run_coroutine(self.arun(requests))

    async def arun(self, requests: Sequence[Request]) -> list[dict[str, Any]]:
        requests = list(requests)
        keys = [r.key(self._card(r)) for r in requests]
        misses = self.misses(requests, keys)
        self.report.requested += len(requests)
        self.report.hits += len(requests) - len(misses)
        if misses and self.mode == "replay":
            shown = "\n  ".join(r.describe() for r in misses[:5])
            more = f"\n  ... and {len(misses) - 5} more" if len(misses) > 5 else ""
            raise StoreMiss(
                f"replay mode: {len(misses)} of {len(requests)} requests are not in the store "
                f"{self.store.root}:\n  {shown}{more}\nRun in live mode to make these calls."
            )
        if misses:
            check_keys({r.model: self._card(r) for r in misses})
            await self._call_all(misses)
        return [self.store.get(k) for k in keys]  # type: ignore[misc]

    async def _call_all(self, misses: list[Request]) -> None:
        from tqdm.auto import tqdm

        by_model: dict[str, list[Request]] = {}
        for r in misses:
            by_model.setdefault(r.model, []).append(r)
        bar = tqdm(total=len(misses), desc="LLM calls", disable=not self.progress, unit="call")
        try:
            for model, reqs in by_model.items():
                card = self.cards[model]
                async with self._endpoint(card) as base_url:
                    await self._call_model(card, base_url, reqs, bar)
        finally:
            bar.close()

    def _endpoint(self, card: ModelCard) -> Any:
        if card.name in self.endpoints:
            return _Fixed(self.endpoints[card.name])
        if card.provider == "llama_cpp":
            from .local_models import LlamaServer

            return LlamaServer.for_card(card)
        return _Fixed(card.base_url or "")

    async def _call_model(self, card: ModelCard, base_url: str, reqs: list[Request], bar: Any) -> None:
        concurrency = min(self.limits.concurrency, card.concurrency or self.limits.concurrency)
        if card.provider == "llama_cpp":
            concurrency = 1  # one llama.cpp server answers one request at a time
        concurrency = max(1, concurrency)
        rpm = min(x for x in (self.limits.rpm, card.rpm, float("inf")) if x) if (self.limits.rpm or card.rpm) else None
        tpm = min(x for x in (self.limits.tpm, card.tpm, float("inf")) if x) if (self.limits.tpm or card.tpm) else None
        limiter = RateLimiter(rpm, tpm)
        key = card.api_key()
        # The SDK's aiohttp transport: the same SDK and request path, with about half the CPU per call of
        # the default httpx transport, whose connection pool also costs O(connections) per request
        # (profiled at concurrency 32, where CPU per call sets the throughput; benchmarks/bench_llm.py).
        http = openai.DefaultAioHttpClient(
            limits=httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            timeout=httpx2.Timeout(self.limits.timeout_s, connect=min(10.0, self.limits.timeout_s)),
        )
        client = openai.AsyncOpenAI(
            base_url=base_url, api_key=key, max_retries=0, timeout=self.limits.timeout_s, http_client=http
        )
        queue: asyncio.Queue[Request] = asyncio.Queue()
        for r in reqs:
            queue.put_nowait(r)

        async def worker() -> None:
            while True:
                try:
                    r = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                await self._call_one(client, card, r, limiter, key)
                bar.update(1)

        try:
            await asyncio.gather(*(worker() for _ in range(min(concurrency, len(reqs)))))
        finally:
            await client.close()

    async def _call_one(
        self, client: openai.AsyncOpenAI, card: ModelCard, r: Request, limiter: RateLimiter, key: str
    ) -> None:
        canon = r.canonical(card)
        k = request_key(canon)
        est = sum(estimate_tokens(c) for _, c in r.messages) + r.max_tokens
        retries = reasks = attempt = 0
        while True:
            attempt += 1
            await limiter.acquire(est)
            started = time.monotonic()
            record: dict[str, Any] = {"key": k, "request": canon, "attempt": attempt}
            try:
                result = await self._send(client, card, r)
            except Exception as exc:  # noqa: BLE001 - every failure is recorded, then retried or given up
                info, retry = _error_info(exc, [key])
                wait = _retry_after(exc)
                self.report.failed_attempts += 1
                give_up = not retry or retries >= self.limits.max_retries
                record.update(
                    status="error",
                    final=give_up,
                    usable=False,
                    text=None,
                    error=info,
                    latency_s=round(time.monotonic() - started, 4),
                    timestamp=_now(),
                )
                self.store.append(record)
                if give_up:
                    self.report.unusable_final += 1
                    return
                retries += 1
                backoff = min(self.limits.backoff_max_s, self.limits.backoff_base_s * 2 ** (retries - 1))
                backoff *= 0.5 + random.random()  # jitter
                await asyncio.sleep(max(backoff, wait or 0.0))
                continue
            usage = result.pop("usage")
            cost = card.cost(usage["prompt_tokens"], usage["completion_tokens"])
            self.report.calls += 1
            self.report.add_usage(card.name, usage["prompt_tokens"], usage["completion_tokens"], cost)
            usable = self.validator(result["text"])
            final = usable or reasks >= self.limits.max_reasks
            record.update(
                status="ok",
                final=final,
                usable=usable,
                usage=usage,
                cost_usd=cost,
                latency_s=round(time.monotonic() - started, 4),
                timestamp=_now(),
                error=None,
                **result,
            )
            self.store.append(record)
            if final:
                if not usable:
                    self.report.unusable_final += 1
                return
            reasks += 1

    async def _send(self, client: openai.AsyncOpenAI, card: ModelCard, r: Request) -> dict[str, Any]:
        common: dict[str, Any] = {
            "model": card.model,
            "temperature": r.temperature,
            "top_p": r.top_p,
            "max_tokens": r.max_tokens,
        }
        if r.seed is not None and card.send_seed:
            common["seed"] = r.seed
        common.update(dict(r.extra))
        if card.api == "completions":
            system = "\n".join(c for role, c in r.messages if role == "system")
            user = "\n".join(c for role, c in r.messages if role != "system")
            prompt = (card.prompt_template or "{user}").format(system=system, user=user).lstrip()
            body = {**common, "prompt": prompt}
            if card.stop:
                body["stop"] = list(card.stop)
            # client.post is the SDK's own request path (errors, timeouts, parsing into its types) minus
            # the per-call re-typing of the parameters, which costs ~1 ms of CPU a call and does
            # nothing to these plain parameters; it kept throughput below the floor at concurrency 32.
            resp = await client.post("/completions", body=body, cast_to=Completion)
            choice = _first_choice(resp)
            text, refusal = choice.text, None
        else:
            body = {**common, "messages": [{"role": role, "content": c} for role, c in r.messages]}
            resp = await client.post("/chat/completions", body=body, cast_to=ChatCompletion)
            choice = _first_choice(resp)
            text = choice.message.content
            refusal = getattr(choice.message, "refusal", None)
        usage = resp.usage
        logprobs = getattr(choice, "logprobs", None)  # kept only when the server sent them
        if hasattr(logprobs, "model_dump"):
            logprobs = logprobs.model_dump()
        return {
            **({"logprobs": logprobs} if logprobs is not None else {}),
            "text": text,
            "refusal": refusal,
            "finish_reason": choice.finish_reason,
            "served_model": getattr(resp, "model", None),
            "response_id": getattr(resp, "id", None),
            "usage": {
                "prompt_tokens": int(getattr(usage, "prompt_tokens", 0) or 0),
                "completion_tokens": int(getattr(usage, "completion_tokens", 0) or 0),
            },
        }


def _first_choice(resp: Any) -> Any:
    """The first choice of a completion, or MalformedResponse (retried) if the body has none."""
    choices = getattr(resp, "choices", None)
    if not isinstance(choices, list) or not choices or choices[0] is None:
        raise MalformedResponse(f"response has no choices: {str(resp)[:200]!r}")
    return choices[0]


class _Fixed:
    """An endpoint that is already running (a remote API, or a server started elsewhere)."""

    def __init__(self, url: str):
        self.url = url

    async def __aenter__(self) -> str:
        return self.url

    async def __aexit__(self, *exc: object) -> None:
        return None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
