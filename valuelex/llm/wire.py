"""What goes over the wire and back: request bodies, parsing a response (any malformed body becomes that
request's own error), describing a failure, and redacting keys from everything that is stored or shown."""

from __future__ import annotations

import email.utils
import errno
import functools
import json
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import openai

from .cards import ModelCard
from .request import Request

RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 529}
_KEYLIKE = re.compile(r"(sk-[A-Za-z0-9_\-]{6,}|Bearer\s+[A-Za-z0-9._\-]{6,})")
REDACTED = "[REDACTED]"
REDACT_ANYWHERE = 8  # a key at least this long is removed wherever it occurs, even inside a longer word
MAX_RAW_BODY = 65_536  # bytes of a bad response body kept in its error record


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


def retry_after(exc: BaseException) -> float | None:
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
