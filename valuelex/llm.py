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

from __future__ import annotations

import asyncio
import concurrent.futures
import email.utils
import errno
import functools
import hashlib
import json
import math
import os
import random
import re
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx2
import openai

from .config import ModelCard, Panel, Respondent, check_keys
from .core.errors import RunFailed, UserError
from .store import ResponseStore, StoreMiss, request_key

MODES = ("replay", "live")
# What a live run asks again only when told to (``--retry-failed`` etc., or VALUELEX_RETRY=failed,lost):
# failed: requests given up after an attempt that may have been paid; damaged: requests whose only record
# is damaged; lost: requests whose call was sent by a run killed before the answer was stored.
RETRY_CHOICES = ("failed", "damaged", "lost")
RETRY_ENV = "VALUELEX_RETRY"
RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 529}
_KEYLIKE = re.compile(r"(sk-[A-Za-z0-9_\-]{6,}|Bearer\s+[A-Za-z0-9._\-]{6,})")
REDACTED = "[REDACTED]"
REDACT_ANYWHERE = 8  # a key at least this long is removed wherever it occurs, even inside a longer word
MESSAGE_OVERHEAD_TOKENS = 8  # role markers and the like, for estimates only
MAX_RAW_BODY = 65_536  # bytes of a bad response body kept in its error record
ANNOUNCE_WAIT_S = 10.0  # a server-requested wait at least this long is announced on stderr


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
        """``request_key(self.canonical(card))``, written directly when every part has its plain type."""
        text = _canonical_text(self, card)
        if text is None:
            return request_key(self.canonical(card))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]

    def estimated_tokens(self) -> tuple[int, int]:
        """(prompt, completion) tokens at most: a rough prompt count plus message overhead, and max_tokens."""
        return sum(estimate_tokens(c) for _, c in self.messages) + MESSAGE_OVERHEAD_TOKENS, self.max_tokens

    def describe(self) -> str:
        return (
            f"model={self.model} prompt={self.prompt_id}@{self.prompt_version} sample={self.sample} "
            f"temperature={self.temperature:g} top_p={self.top_p:g} seed={self.seed}"
        )


_TEXT = json.encoder.encode_basestring  # how canonical_json writes a string (ensure_ascii=False), quotes included
_SEEDS = (int, type(None))


def _canonical_text(r: Request, card: ModelCard) -> str | None:
    """The canonical JSON of ``r.canonical(card)`` as ``canonical_json`` writes it (sorted keys, no spaces),
    built without the dict and the encoder: replaying a store keys every request, and this is ~2x faster.
    None when a part is not of its plain type (extra parameters, a number that is a bool or not finite,
    text that is not a string): then the encoder writes it. A test checks both agree on random requests."""
    if r.extra or type(r.max_tokens) is not int or type(r.sample) is not int or type(r.seed) not in _SEEDS:
        return None
    t, p = float(r.temperature), float(r.top_p)
    if not (math.isfinite(t) and math.isfinite(p)):
        return None
    api, seed = card.api, "null" if r.seed is None else repr(r.seed)
    try:  # _TEXT refuses anything but a string (TypeError)
        messages = ",".join([f'{{"content":{_TEXT(c)},"role":{_TEXT(role)}}}' for role, c in r.messages])
        text = (
            f'{{"api":{_TEXT(api)},"messages":[{messages}],"model":{_TEXT(r.model)},"model_id":{_TEXT(card.model)},'
            f'"params":{{"max_tokens":{r.max_tokens!r},"seed":{seed},"temperature":{t!r},"top_p":{p!r}}},'
            f'"prompt_id":{_TEXT(r.prompt_id)},'
        )
        if api == "completions":
            template = card.prompt_template
            stop = ",".join([_TEXT(x) for x in card.stop])
            text += f'"prompt_template":{"null" if template is None else _TEXT(template)},'
            tail = f',"stop":[{stop}]}}'
        elif api == "chat":
            tail = "}"
        else:
            return None
        return f'{text}"prompt_version":{_TEXT(r.prompt_version)},"sample":{r.sample!r}{tail}'
    except TypeError:
        return None


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
    timeout_s: float = 120.0  # total deadline of one attempt: connect, send, wait, read the whole body
    max_retries: int = 5
    max_reasks: int = 2
    backoff_base_s: float = 0.5
    backoff_max_s: float = 60.0
    max_retry_after_s: float = 120.0  # a longer Retry-After is capped to this (our choice), and announced


@dataclass
class RunReport:
    """What a run did: store hits, calls made, failures, tokens and cost per model."""

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


def _hex(value: int, digits: int) -> str:
    """A hex number as a pattern matching either case of its letters."""
    return "".join(f"[{d}{d.upper()}]" if d.isalpha() else d for d in f"{value:0{digits}x}")


def _char_forms(c: str) -> str:
    """A pattern for one character as a server may echo it: itself, or escaped for JSON or Python (any
    number of backslashes, so escaped twice too), or percent-encoded for a URL."""
    o = ord(c)
    forms = [re.escape(c)]
    if o < 0x10000:
        forms.append(r"\\+u" + _hex(o, 4))
    else:  # JSON writes a character beyond the BMP as a surrogate pair: two \u escapes
        high, low = 0xD800 + ((o - 0x10000) >> 10), 0xDC00 + ((o - 0x10000) & 0x3FF)
        forms.append(r"\\+u" + _hex(high, 4) + r"\\+u" + _hex(low, 4))
    if o < 0x100:
        forms.append(r"\\+x" + _hex(o, 2))
    if o < 0x80:
        forms.append("%" + _hex(o, 2))
    if c in "\"'/\\":
        forms.append(r"\\+" + re.escape(c))
    return "(?:" + "|".join(forms) + ")"


class Redactor:
    """Removes given key values from texts, in every form a server can echo them. The rule:

    - a key of at least ``REDACT_ANYWHERE`` (8) characters is removed wherever it occurs, also inside
      a longer word, also escaped (JSON ``\\u0073``, ``\\/``, Python ``\\x73``, URL ``%73``, in any mix);
      a text that ends with at least its first 8 characters, or starts with at least its last 8, has
      that part removed too (a key cut by a length limit);
    - a shorter key (down to 1 character) is removed where it stands as a whole word (not next to a
      letter, digit, ``_`` or ``-``), in every field, escaped forms included: a server's echo
      ("your key is k3y") is caught, the same letters inside other words are not. A key as short as
      "a" would also remove the word "a" from answers: short keys cost data, so use real ones.
    """

    def __init__(self, secrets: Iterable[str]):
        self.secrets = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))
        self.long = tuple(s for s in self.secrets if len(s) >= REDACT_ANYWHERE)
        self.reach = 6 * max((len(s) for s in self.secrets), default=0) + 16  # longest escaped form
        self._plain = self._compile(re.escape)
        self._escaped = self._compile(lambda s: "".join(_char_forms(c) for c in s))

    def _compile(self, form: Callable[[str], str]) -> re.Pattern[str] | None:
        patterns = []
        for s in self.secrets:
            body = form(s)
            if len(s) < REDACT_ANYWHERE:
                body = rf"(?<![A-Za-z0-9_\-]){body}(?![A-Za-z0-9_\-])"
            patterns.append(body)
        return re.compile("|".join(patterns)) if patterns else None

    def __call__(self, text: str) -> str:
        if self._plain is None or not text:
            return text
        pattern = self._escaped if ("\\" in text or "%" in text) else self._plain
        text = pattern.sub(REDACTED, text)  # type: ignore[union-attr]
        for s in self.long:
            for k in range(len(s) - 1, REDACT_ANYWHERE - 1, -1):
                if text.endswith(s[:k]):
                    text = text[:-k] + REDACTED
                    break
            for k in range(len(s) - 1, REDACT_ANYWHERE - 1, -1):
                if text.startswith(s[-k:]):
                    text = REDACTED + text[k:]
                    break
        return text


@functools.lru_cache(maxsize=64)
def _redactor(secrets: tuple[str, ...]) -> Redactor:
    return Redactor(secrets)


def redactor(secrets: Iterable[str] | Redactor) -> Redactor:
    """A Redactor for these key values (built once per set of keys)."""
    return secrets if isinstance(secrets, Redactor) else _redactor(tuple(secrets))


def redact(text: str, secrets: Iterable[str] | Redactor = ()) -> str:
    """Remove keys (the given values, in every form, and anything key-shaped) from a message before it is stored."""
    return _KEYLIKE.sub(REDACTED, redact_values(text, secrets))


def redact_values(text: str, secrets: Iterable[str] | Redactor = ()) -> str:
    """Remove the given key values (and only those) from a text, in every form (see ``Redactor``)."""
    return redactor(secrets)(text)


def redact_record(record: dict[str, Any], secrets: Iterable[str] | Redactor) -> dict[str, Any]:
    """The record with every known key value removed from every text in it, the names of fields inside
    structures (e.g. the tokens of ``logprobs``) included; the request and the record's key aside."""
    clean_text = redactor(secrets)
    if not clean_text.secrets:
        return record

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return clean_text(value)
        if isinstance(value, dict):
            return {clean(k): clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return {k: v if k in ("key", "request") else clean(v) for k, v in record.items()}


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


def request_body(card: ModelCard, r: Request) -> tuple[str, dict[str, Any]]:
    """The endpoint path and JSON body of one call: the one place a request becomes API parameters."""
    body: dict[str, Any] = {
        "model": card.model,
        "temperature": r.temperature,
        "top_p": r.top_p,
        "max_tokens": r.max_tokens,
    }
    if r.seed is not None and card.send_seed:
        body["seed"] = r.seed
    body.update(dict(r.extra))
    if card.api == "completions":
        system = "\n".join(c for role, c in r.messages if role == "system")
        user = "\n".join(c for role, c in r.messages if role != "system")
        body["prompt"] = (card.prompt_template or "{user}").format(system=system, user=user).lstrip()
        if card.stop:
            body["stop"] = list(card.stop)
        return "/completions", body
    body["messages"] = [{"role": role, "content": c} for role, c in r.messages]
    return "/chat/completions", body


def _string(obj: dict[str, Any], name: str, where: str) -> str | None:
    """A string field of the body (or None); anything else, or text that is not valid Unicode, is malformed."""
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise MalformedResponse(f"{where} is {type(value).__name__}, not a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise MalformedResponse(f"{where} is not valid Unicode (a lone surrogate at character {exc.start})") from None
    return value


def _token_count(usage: dict[str, Any], name: str) -> int:
    value = usage.get(name)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or value != int(value):
        raise MalformedResponse(f"usage.{name} is {value!r}, not a token count")
    return int(value)


def parse_completion(raw: bytes, api: str) -> dict[str, Any]:
    """The fields we store from a 200 body, or MalformedResponse if it is not an OpenAI-shaped completion."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # not JSON, or not UTF-8
        raise MalformedResponse(f"the body is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise MalformedResponse(f"the body is a JSON {type(data).__name__}, not an object")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise MalformedResponse("the response has no choices")
    choice = choices[0]
    if api == "completions":
        text, refusal = _string(choice, "text", "choices[0].text"), None
    else:
        message = choice.get("message")
        if not isinstance(message, dict):
            raise MalformedResponse("choices[0].message is not an object")
        text = _string(message, "content", "choices[0].message.content")
        refusal = _string(message, "refusal", "choices[0].message.refusal")
    usage = data.get("usage")
    if usage is not None and not isinstance(usage, dict):
        raise MalformedResponse("usage is not an object")
    logprobs = choice.get("logprobs")  # kept only when the server sent them (a judge asks for them)
    return {
        **({"logprobs": logprobs} if logprobs is not None else {}),
        "text": text,
        "refusal": refusal,
        "finish_reason": _string(choice, "finish_reason", "choices[0].finish_reason"),
        "served_model": _string(data, "model", "model"),
        "response_id": _string(data, "id", "id"),
        "usage": {name: _token_count(usage or {}, name) for name in ("prompt_tokens", "completion_tokens")},
    }


def body_text(raw: bytes | None, secrets: Iterable[str] | Redactor) -> str | None:
    """A response body as storable text (bad bytes shown as \\xNN, keys removed, at most MAX_RAW_BODY bytes).

    Keys are removed before the body is cut, so a key that spans the cut leaves no prefix behind.
    """
    if raw is None:
        return None
    clean = redactor(secrets)
    if len(raw) <= MAX_RAW_BODY:
        return redact(raw.decode("utf-8", "backslashreplace"), clean)
    head = redact(raw[: MAX_RAW_BODY + clean.reach].decode("utf-8", "backslashreplace"), clean)
    kept = head.encode("utf-8")[:MAX_RAW_BODY].decode("utf-8", "ignore")
    return kept + f"[... {len(raw) - MAX_RAW_BODY} more bytes]"


def _connect_failure(exc: BaseException) -> tuple[str, str] | None:
    """(kind, message) when the attempt never reached the server (the transport may call that a timeout)."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ConnectionRefusedError) or getattr(cause, "errno", None) == errno.ECONNREFUSED:
            return "connection_refused", f"connection refused ({cause}): is the server running, is base_url right?"
        if type(cause).__name__ == "ClientConnectorError":  # aiohttp: no connection (DNS, unreachable)
            return "connection_failed", f"could not connect ({cause})"
        cause = cause.__cause__ or cause.__context__
    return None


def describe_failure(
    exc: BaseException, raw: bytes | None, secrets: Iterable[str] | Redactor, timeout_s: float
) -> tuple[dict[str, Any], bool]:
    """(error description for the store, whether to retry) for whatever one attempt raised.

    Timeouts, connection errors, retryable HTTP statuses and malformed bodies are retried; an
    unexpected exception (``internal_error``) is stored as the request's own error and not retried.
    A connection that was refused or never made is stored as such, not as the timeout the transport
    may report it as.
    """
    status = getattr(exc, "status_code", None)
    message = str(exc)
    connect = _connect_failure(exc) if isinstance(exc, (OSError, openai.APIConnectionError)) else None
    if connect is not None:
        (kind, message), retry = connect, True
    elif isinstance(exc, (TimeoutError, openai.APITimeoutError)):
        kind, retry = "timeout", True
        message = f"no complete answer within {timeout_s:g} s (the total deadline of one attempt)"
    elif isinstance(exc, openai.APIConnectionError):
        kind, retry = "connection", True
    elif isinstance(exc, openai.APIStatusError):
        kind, retry = f"http_{exc.status_code}", exc.status_code in RETRYABLE_STATUS
        try:
            raw = exc.response.content
        except Exception:  # noqa: BLE001 - a body we cannot read is left out
            raw = None
    elif isinstance(exc, MalformedResponse):
        kind, retry = "malformed_response", True
    else:
        kind, retry = "internal_error", False
        message = f"{type(exc).__name__}: {exc}"
    info = {
        "type": kind,
        "status_code": status,
        "message": redact(message, secrets)[:500],
        "raw_body": body_text(raw, secrets),
    }
    return info, retry


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
            from .local_models import LlamaServerPool

            return LlamaServerPool.for_card(card)
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
        asked = _retry_after(exc)
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
