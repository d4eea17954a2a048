"""Property-based tests (Hypothesis) of the two places where the LLM layer meets hostile bytes.

Redaction: for random keys (1 to 60 characters, any printable character but whitespace) and every
form a server can echo them in (as they are, JSON-escaped with ``\\/`` or ``\\uXXXX``, Python's
``\\xNN``, percent-encoded, as the name of a field inside a structure, cut by the raw-body limit),
nothing stored keeps the key; and a text without the key in any form comes through unchanged.

Request keys: ``Request.key`` writes the canonical JSON of a request itself (replaying a store keys
every request); for random requests it must give the store's ``request_key`` exactly.

The store's loader: a shard of real records with random byte damage (bytes flipped, inserted,
deleted, the file cut anywhere) never makes the loader raise; every non-blank line is either kept
as a well-formed record whose key is the hash of its request, or reported with its file and line.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from valuelex.llm.cards import ModelCard
from valuelex.llm.request import Request
from valuelex.llm.store import (
    MESSAGE_FIELDS,
    PARAMS_FIELDS,
    RECORD_FIELDS,
    REQUEST_FIELDS,
    SCHEMA,
    USAGE_FIELDS,
    ResponseStore,
    canonical_json,
    request_key,
    validate_record,
)
from valuelex.llm.wire import MAX_RAW_BODY, REDACT_ANYWHERE, REDACTED, body_text, redact, redact_record

# Keys: printable, no whitespace (valuelex.llm.cards refuses keys with spaces or control characters).
KEY_CHARS = st.characters(
    codec="utf-8", categories=("L", "N", "P", "S"), exclude_characters="\u2028\u2029"
)  # letters, digits, punctuation, symbols, any script
KEYS = st.text(KEY_CHARS, min_size=1, max_size=60)
WORD = f"{string.ascii_letters}{string.digits}_-"


def json_escaped(key: str, slash: bool) -> str:
    """The key inside a JSON string: as json.dumps writes it (ASCII only), '/' escaped on request."""
    body = json.dumps(key, ensure_ascii=True)[1:-1]
    return body.replace("/", "\\/") if slash else body


def u_escaped(key: str) -> str:
    """Every character as a JSON \\uXXXX escape (a surrogate pair beyond the BMP)."""
    return "".join(f"\\u{u:04x}" for c in key for u in _utf16(c))


def _utf16(c: str) -> list[int]:
    data = c.encode("utf-16-be")
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


FORMS = {
    "raw": lambda k: k,
    "json": lambda k: json_escaped(k, slash=False),
    "json with \\/": lambda k: json_escaped(k, slash=True),
    "\\u for every character": u_escaped,
}


def appears(key: str, text: str) -> bool:
    """Whether ``text`` still holds the key: anywhere for a long key, as a whole word for a short one."""
    if len(key) >= REDACT_ANYWHERE:
        return key in text
    start = text.find(key)
    while start >= 0:
        before = text[start - 1] if start else ""
        after = text[start + len(key) : start + len(key) + 1]
        if before not in WORD or not before:
            if not after or after not in WORD:
                return True
        start = text.find(key, start + 1)
    return False


@settings(max_examples=300, deadline=None)
@given(key=KEYS, form=st.sampled_from(sorted(FORMS)), before=st.text(max_size=30), after=st.text(max_size=30))
@example(key="a", form="raw", before="", after="")
@example(key="k3y", form="json with \\/", before='{"error": "bad key ', after='"}')
def test_an_echoed_key_is_removed_in_every_form(key: str, form: str, before: str, after: str):
    assume(key not in REDACTED)  # a key inside the marker itself ("[REDACTE") cannot be told from it
    echoed = FORMS[form](key)
    text = f"{before} {echoed} {after}"  # as a server writes it: the key set apart from other words
    cleaned = redact(text, [key])
    assert not appears(key, cleaned), (key, form, cleaned)
    assert not appears(echoed, cleaned), (key, form, cleaned)
    assert REDACTED in cleaned


@settings(max_examples=300, deadline=None)
@given(key=KEYS, text=st.text(max_size=200))
def test_a_text_without_the_key_is_unchanged(key: str, text: str):
    assume(not any(form(key) in text for form in FORMS.values()))
    assume(all(key[:k] not in text for k in range(min(len(key), REDACT_ANYWHERE), len(key) + 1)))
    assume(all(key[-k:] not in text for k in range(min(len(key), REDACT_ANYWHERE), len(key) + 1)))
    assume("\\" not in text and "%" not in text and "sk-" not in text and "Bearer" not in text)
    assert redact(text, [key]) == text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=KEYS, cut=st.integers(min_value=0, max_value=200), form=st.sampled_from(sorted(FORMS)))
@example(key=".", cut=0, form="raw")  # a key made of the marker's own characters
def test_a_key_cut_by_the_raw_body_limit_leaves_nothing(key: str, cut: int, form: str):
    assume(key not in REDACTED)
    echoed = FORMS[form](key).encode("utf-8")
    cut = min(cut, len(echoed))
    filler = b"x" * (MAX_RAW_BODY - cut - 1) + b" "  # the limit falls ``cut`` bytes into the echoed key
    raw = filler + echoed + b" and more text after the key"
    stored = body_text(raw, [key])
    kept = stored.rsplit("[... ", 1)[0]
    tail = kept[len(filler) - 1 :]  # from the space in front of the key on
    for k in range(1, len(key) + 1):
        assert not tail.endswith(" " + key[:k]), (key, cut, tail)
    # what was kept holds no key; the rest is our marker alone (a key "." is in "[... 29 more bytes]")
    assert not appears(key, kept), (key, cut, kept[-80:])
    assert re.fullmatch(r"\[\.\.\. [\d,]+ more bytes\]", stored[len(kept) :]), stored[len(kept) :]


@settings(max_examples=150, deadline=None)
@given(key=KEYS, where=st.sampled_from(["token", "top_logprobs key", "nested list", "text"]))
def test_a_key_in_the_names_of_fields_is_removed(key: str, where: str):
    assume(key not in REDACTED)
    # the names of the structure itself (the record's own fields) are not echoes of the key
    assume(not any(key in name for name in ("logprobs", "top_logprobs", "content", "token", "extra", "text")))
    logprobs = {
        "content": [
            {"token": key if where == "token" else "high", "logprob": -0.1,
             "top_logprobs": [{key if where == "top_logprobs key" else "low": -2.3}]},
        ],
        "extra": [[{key: 1}]] if where == "nested list" else [],
    }  # fmt: skip
    record = {"key": "0" * 32, "request": {"model": "m"}, "text": f"({key})" if where == "text" else "ok"}
    record["logprobs"] = logprobs
    cleaned = redact_record(record, [key])
    texts = list(strings({k: v for k, v in cleaned.items() if k not in ("key", "request")}))
    assert not [t for t in texts if appears(key, t)], (key, where, cleaned)
    assert REDACTED in texts or any(REDACTED in t for t in texts)
    assert cleaned["request"] == {"model": "m"}  # the request is never rewritten (its hash is the key)


def strings(value: object) -> Iterator[str]:
    """Every text in a structure: the names of its fields and its string values."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from strings(k)
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


# the store's loader against byte damage ------------------------------------------------------
def _record(i: int) -> dict:
    request = {
        "model": "m", "model_id": "m-1", "api": "chat",
        "messages": [{"role": "user", "content": f"question {i}: what do you value? é ü 価値"}],
        "params": {"temperature": 0.7, "top_p": 0.95, "max_tokens": 32, "seed": i},
        "sample": 0, "prompt_id": f"p{i}", "prompt_version": "v1",
    }  # fmt: skip
    rec = {"schema": SCHEMA, "key": request_key(request), "request": request, "attempt": 1, "final": True}
    rec |= {"status": "ok", "usable": True, "text": f"honesty, kindness {i}", "timestamp": "2026-01-01T00:00:00Z"}
    rec |= {"usage": {"prompt_tokens": 9, "completion_tokens": 3}, "error": None}
    return rec


SHARD = b"".join((canonical_json(_record(i)) + "\n").encode("utf-8") for i in range(6))
DAMAGE = st.lists(
    st.tuples(
        st.sampled_from(["flip", "insert", "delete", "cut"]),
        st.integers(min_value=0, max_value=len(SHARD) - 1),
        st.binary(min_size=1, max_size=3),
    ),
    min_size=1,
    max_size=6,
)


def damaged(data: bytes, damage: list[tuple[str, int, bytes]]) -> bytes:
    for kind, at, junk in damage:
        at = min(at, max(len(data) - 1, 0))
        if kind == "flip":
            data = data[:at] + bytes([data[at] ^ (junk[0] or 1)]) + data[at + 1 :] if data else data
        elif kind == "insert":
            data = data[:at] + junk + data[at:]
        elif kind == "delete":
            data = data[:at] + data[at + len(junk) :]
        else:
            data = data[:at]
    return data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(damage=DAMAGE)
def test_the_loader_keeps_or_reports_every_line_of_a_damaged_shard(tmp_path: Path, damage):
    data = damaged(SHARD, damage)
    shard = tmp_path / "m.jsonl"
    shard.write_bytes(data)
    store = ResponseStore(tmp_path, announce=False)  # never raises
    lines = [n for n, line in enumerate(data.split(b"\n"), start=1) if line.strip()]
    reported = [i.line for i in store.stats.issues]
    assert all(i.file == shard for i in store.stats.issues)
    assert store.stats.records + len(reported) == len(lines)  # each line kept or reported, none twice
    assert set(reported) <= set(lines)
    for rec in store.records():
        assert validate_record(rec) is None and rec["key"] == request_key(rec["request"])
        canonical_json(rec).encode("utf-8")  # what was kept can be written again
    originals = {r["key"]: r for r in map(_record, range(6))}
    for rec in store.records():  # damage to a request is caught by its key; only answer text can change
        assert rec["request"] == originals[rec["key"]]["request"]
    shard.unlink()


DELETE = object()
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats(-2, 2) | st.sampled_from(["", "ok", "error", "sent"]),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.sampled_from(["role", "content", "x"]), inner),
    max_leaves=4,
)
PLACES = [(), ("request",), ("request", "params"), ("request", "messages", 0), ("usage",), ("error",)]
NAMES = sorted({*RECORD_FIELDS, *REQUEST_FIELDS, *PARAMS_FIELDS, *MESSAGE_FIELDS, *USAGE_FIELDS, "type", "extra"})


@settings(max_examples=300, deadline=None)
@given(
    edits=st.lists(
        st.tuples(st.sampled_from(PLACES), st.sampled_from(NAMES), st.one_of(st.just(DELETE), JSON_VALUES)),
        min_size=1,
        max_size=3,
    ),
    i=st.integers(0, 5),
)
@example(edits=[((), "status", "error")], i=0)
def test_validation_answers_the_same_whether_the_records_shape_is_known_or_not(edits, i):
    """validate_record remembers the shapes (keys and value types) of good records and then checks only
    values: for random edits of a good record (any field of any object replaced, deleted or added), its
    answer is the same with every memo empty as after a good record of its shape and the unedited one."""
    import copy

    import valuelex.llm.store as store_module

    rec = copy.deepcopy(_record(i))
    rec["error"] = {"type": "http_500", "message": None}
    for place, name, value in edits:
        target = rec
        for step in place:
            target = target[step] if isinstance(target, dict | list) and _has(target, step) else None
        if not isinstance(target, dict):
            continue
        if value is DELETE:
            target.pop(name, None)
        else:
            target[name] = value
    line = canonical_json(rec).encode("utf-8") if _encodable(rec) else None
    rows = ("_RECORD_ROWS", "_REQUEST_ROWS", "_PARAMS_ROWS", "_MESSAGE_ROWS", "_USAGE_ROWS", "_ERROR_ROWS")
    memos = [store_module._GOOD_SHAPES, *(getattr(store_module, r).good for r in rows)]
    for memo in memos:
        memo.clear()
    cold = validate_record(rec), validate_record(rec, line) if line else None
    for memo in memos:
        memo.clear()
    twin = copy.deepcopy(rec)  # the same shape, every value good
    _make_good(twin)
    pristine = {**_record(i), "error": {"type": "http_500", "message": None}}
    warm_up = validate_record(twin), validate_record(pristine)  # the edited shape, and the good one
    warm = validate_record(rec), validate_record(rec, line) if line else None
    assert warm == cold, (warm_up, rec)


def _has(target, step) -> bool:
    return step in target if isinstance(target, dict) else isinstance(step, int) and step < len(target)


def _encodable(rec) -> bool:
    try:
        canonical_json(rec).encode("utf-8")
    except (TypeError, ValueError):
        return False
    return True


def _make_good(rec: dict) -> None:
    """Good values of the same types where a field has its type: the record's shape becomes a good one if
    its types are good (its values are what the edits may have broken)."""
    if type(rec.get("schema")) is int:
        rec["schema"] = SCHEMA
    if type(rec.get("attempt")) is int:
        rec["attempt"] = 1
    if type(rec.get("status")) is str:
        rec["status"] = "ok"
    if type(rec.get("usage")) is dict:
        for name in USAGE_FIELDS:
            if type(rec["usage"].get(name)) is int:
                rec["usage"][name] = 1
    if isinstance(rec.get("request"), dict) and type(rec.get("key")) is str and _encodable(rec["request"]):
        rec["key"] = request_key(rec["request"])


# request keys ----------------------------------------------------------------------------------
CARD_CHAT = ModelCard(
    name="m", provider="openai_compatible", model="served-m", family="F", params_b=1.0,
    training_stage="instruct", price_input=1.0, price_output=2.0, base_url="http://127.0.0.1:9/v1",
)  # fmt: skip
CARDS = st.sampled_from(
    [
        CARD_CHAT,
        replace(CARD_CHAT, api="completions", prompt_template="{system}\n\nQ: {user}\nA:", stop=("\nQ:", "é")),
        replace(CARD_CHAT, api="completions", prompt_template=None, stop=()),
        replace(CARD_CHAT, model='a "quoted"\\ id'),
    ]
)
NUMBERS = st.one_of(st.floats(), st.integers(-(10**20), 10**20), st.booleans())
REQUESTS = st.builds(
    Request,
    model=st.text(max_size=20),
    messages=st.lists(st.tuples(st.sampled_from(["system", "user", "assistant"]), st.text()), max_size=3).map(tuple),
    temperature=NUMBERS,
    top_p=NUMBERS,
    max_tokens=st.one_of(st.integers(0, 10**6), st.booleans()),
    seed=st.one_of(st.none(), st.integers(-(2**63), 2**64), st.booleans()),
    sample=st.one_of(st.integers(0, 100), st.booleans()),
    prompt_id=st.text(max_size=10),
    prompt_version=st.text(max_size=5),
    extra=st.one_of(st.just(()), st.just((("logprobs", True), ("top_logprobs", 20)))),
)


@settings(max_examples=500, deadline=None)
@given(request=REQUESTS, card=CARDS)
@example(request=Request("m", (("user", 'a\x00\x1f\u2028"\\/é'),), 0.7, 1.0, 64, seed=11), card=CARD_CHAT)
def test_a_request_key_is_the_hash_of_its_canonical_json(request: Request, card: ModelCard):
    """Request.key writes the canonical JSON itself (faster): it must be the store's request_key, byte for byte."""
    assert request.key(card) == request_key(request.canonical(card))
