"""The LLM layer's pure parts: request bodies, parsing 200 answers, failure descriptions, redaction, plans, misses.

The same code meets real servers in test_llm_faults.py (our fault server) and test_llm_llama.py (llama.cpp).
"""

from __future__ import annotations

import email.utils
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2
import openai
import pytest

from valuelex.core.errors import UserError
from valuelex.llm.cards import ModelCard, Panel, Respondent
from valuelex.llm.limits import Limits
from valuelex.llm.request import Request, panel_requests, respondent_columns
from valuelex.llm.runner import LLMRunner, NoUsableAnswers, Plan, default_validator
from valuelex.llm.store import ResponseStore, StoreMiss, canonical_json
from valuelex.llm.wire import (
    MAX_RAW_BODY,
    MalformedResponse,
    body_text,
    describe_failure,
    parse_completion,
    redact,
    redact_record,
    redact_values,
    redactor,
    request_body,
    retry_after,
)

CARD = ModelCard(
    name="m",
    provider="openai_compatible",
    model="served-m",
    family="F",
    params_b=1.0,
    training_stage="instruct",
    price_input=1.0,
    price_output=2.0,
    base_url="http://127.0.0.1:9/v1",
    api_key_env="SOME_KEY",
)
TEXT_CARD = replace(CARD, api="completions", prompt_template="{system}\n\nQ: {user}\nA:", stop=("\nQ:",))
REQ = Request("m", (("system", "Be brief."), ("user", "What do you value?")), 0.7, 0.95, 64, seed=11, prompt_id="p1")


def chat_body(content: object = "honesty, kindness", **extra: object) -> bytes:
    body = {
        "id": "c-1",
        "model": "served-m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3},
        **extra,
    }
    return json.dumps(body).encode()


# request bodies -------------------------------------------------------------------------
def test_chat_request_body():
    path, body = request_body(CARD, REQ)
    assert path == "/chat/completions"
    assert body == {
        "model": "served-m",
        "temperature": 0.7,
        "top_p": 0.95,
        "max_tokens": 64,
        "seed": 11,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What do you value?"}],
    }


def test_completions_request_body_uses_the_template_and_stop():
    path, body = request_body(TEXT_CARD, replace(REQ, seed=None))
    assert path == "/completions"
    assert body["prompt"] == "Be brief.\n\nQ: What do you value?\nA:" and body["stop"] == ["\nQ:"]
    assert "seed" not in body and "messages" not in body
    # braces in the question are text, not placeholders
    _, body = request_body(TEXT_CARD, replace(REQ, messages=(("user", "a {user} b {}"),)))
    assert body["prompt"] == "Q: a {user} b {}\nA:"


def test_seed_is_not_sent_to_providers_without_one():
    assert "seed" not in request_body(replace(CARD, send_seed=False), REQ)[1]


# parsing 200 answers ----------------------------------------------------------------------
def test_a_well_formed_answer():
    assert parse_completion(chat_body(), "chat") == {
        "text": "honesty, kindness",
        "refusal": None,
        "finish_reason": "stop",
        "served_model": "served-m",
        "response_id": "c-1",
        "usage": {"prompt_tokens": 12, "completion_tokens": 3},
    }
    text = json.dumps({"choices": [{"text": "fairness", "finish_reason": "length"}]}).encode()
    parsed = parse_completion(text, "completions")
    assert parsed["text"] == "fairness" and parsed["finish_reason"] == "length"
    assert parsed["usage"] == {"prompt_tokens": 0, "completion_tokens": 0} and parsed["response_id"] is None
    assert parse_completion(chat_body(None), "chat")["text"] is None  # content null: unusable, not malformed
    assert parse_completion(chat_body(usage=None), "chat")["usage"]["prompt_tokens"] == 0
    assert parse_completion(chat_body(usage={"prompt_tokens": 4.0}), "chat")["usage"]["prompt_tokens"] == 4


@pytest.mark.parametrize(
    ("raw", "api", "message"),
    [
        (
            b'{"choices": [{"mess',
            "chat",
            "the body is not JSON (Unterminated string starting at: line 1 column 15 (char 14))",
        ),
        (b"<html>hi</html>", "chat", "the body is not JSON (Expecting value: line 1 column 1 (char 0))"),
        (
            b'{"a": "\xff"}',
            "chat",
            "the body is not JSON ('utf-8' codec can't decode byte 0xff in position 7: invalid start byte)",
        ),
        (b"[1, 2]", "chat", "the body is a JSON list, not an object"),
        (b'{"choices": []}', "chat", "the response has no choices"),
        (b'{"choices": [null]}', "chat", "the response has no choices"),
        (b'{"choices": "x"}', "chat", "the response has no choices"),
        (b'{"id": 1}', "chat", "the response has no choices"),
        (b'{"choices": [{"message": "honesty"}]}', "chat", "choices[0].message is not an object"),
        (chat_body([{"type": "text", "text": "x"}]), "chat", "choices[0].message.content is list, not a string"),
        (chat_body(42), "chat", "choices[0].message.content is int, not a string"),
        (
            chat_body("a \ud83d b"),
            "chat",
            "choices[0].message.content is not valid Unicode (a lone surrogate at character 2)",
        ),
        (b'{"choices": [{"text": 5}]}', "completions", "choices[0].text is int, not a string"),
        (chat_body(usage={"prompt_tokens": "many"}), "chat", "usage.prompt_tokens is 'many', not a token count"),
        (chat_body(usage={"completion_tokens": -1}), "chat", "usage.completion_tokens is -1, not a token count"),
        (chat_body(usage={"completion_tokens": True}), "chat", "usage.completion_tokens is True, not a token count"),
        (chat_body(usage={"completion_tokens": 1.5}), "chat", "usage.completion_tokens is 1.5, not a token count"),
        (chat_body(usage=[1]), "chat", "usage is not an object"),
        (chat_body(id=["x"]), "chat", "id is list, not a string"),
        (chat_body(model=3), "chat", "model is int, not a string"),
        (b"[" * 100_000 + b"]" * 100_000, "chat", None),  # nested too deeply for the JSON parser
    ],
)
def test_odd_answers_are_malformed_with_a_reason(raw: bytes, api: str, message: str | None):
    with pytest.raises(MalformedResponse) as err:
        parse_completion(raw, api)
    if message is not None:
        assert str(err.value) == message
    else:
        assert str(err.value).startswith("the body is not JSON (maximum recursion depth exceeded")


def test_refusal_and_finish_reason_must_be_strings():
    body = json.loads(chat_body())
    body["choices"][0]["message"]["refusal"] = {"why": "no"}
    with pytest.raises(MalformedResponse, match=r"^choices\[0\]\.message\.refusal is dict, not a string$"):
        parse_completion(json.dumps(body).encode(), "chat")
    body = json.loads(chat_body())
    body["choices"][0]["finish_reason"] = 1
    with pytest.raises(MalformedResponse, match=r"^choices\[0\]\.finish_reason is int, not a string$"):
        parse_completion(json.dumps(body).encode(), "chat")


# failures ---------------------------------------------------------------------------------
def _status_error(status: int, body: bytes, headers: dict[str, str] | None = None) -> openai.APIStatusError:
    request = httpx2.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    response = httpx2.Response(status, content=body, headers=headers or {}, request=request)
    return openai.APIStatusError(f"Error code: {status} - {body.decode()}", response=response, body=None)


def test_describe_failure_kinds_and_retries():
    request = httpx2.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    cases = [
        (TimeoutError(), "timeout", True),
        (openai.APITimeoutError(request=request), "timeout", True),
        (openai.APIConnectionError(request=request), "connection", True),
        (_status_error(429, b"slow down"), "http_429", True),
        (_status_error(503, b"busy"), "http_503", True),
        (_status_error(401, b"bad key"), "http_401", False),
        (_status_error(400, b"bad request"), "http_400", False),
        (MalformedResponse("the response has no choices"), "malformed_response", True),
        (KeyError("oops"), "internal_error", False),
        (ValueError("refusing to store"), "internal_error", False),
    ]
    for exc, kind, retry in cases:
        info, again = describe_failure(exc, None, [], 2.0)
        assert (info["type"], again) == (kind, retry), exc
    info, _ = describe_failure(TimeoutError(), None, [], 2.0)
    assert info["message"] == "no complete answer within 2 s (the total deadline of one attempt)"
    info, _ = describe_failure(KeyError("oops"), b"raw", [], 2.0)
    assert info == {"type": "internal_error", "status_code": None, "message": "KeyError: 'oops'", "raw_body": "raw"}
    info, _ = describe_failure(_status_error(500, b'{"error": "x"}'), None, [], 2.0)
    assert info["status_code"] == 500 and info["raw_body"] == '{"error": "x"}'


def test_failures_are_redacted_in_message_and_body():
    key = "Plain0key0without0prefix42"
    exc = _status_error(401, f"Incorrect API key provided: {key}; also sk-abcdef123456".encode())
    info, _ = describe_failure(exc, None, [key], 2.0)
    assert key not in json.dumps(info) and "sk-abcdef123456" not in json.dumps(info)
    assert info["raw_body"] == "Incorrect API key provided: [REDACTED]; also [REDACTED]"
    assert info["message"].endswith("Incorrect API key provided: [REDACTED]; also [REDACTED]")


def test_body_text_keeps_bad_bytes_visible_and_is_capped():
    assert body_text(b'{"a": "\xff"}', []) == '{"a": "\\xff"}'
    assert body_text(None, []) is None
    big = body_text(b"x" * (MAX_RAW_BODY + 10), [])
    assert big == "x" * MAX_RAW_BODY + "[... 10 more bytes]"


def test_redact_record_cleans_every_text_but_not_the_request():
    key = "Canary0123456789abcdef"
    record = {
        "key": "0" * 32,
        "request": {"messages": [{"role": "user", "content": f"keep {key}"}]},
        "text": f"your key is {key}",
        "error": {"message": f"echo {key}", "raw_body": f'{{"k": "{key}"}}'},
        "usage": {"prompt_tokens": 3},
        "nested": [f"{key}!", 1, None],
    }
    clean = redact_record(record, [key])
    assert clean["text"] == "your key is [REDACTED]" and clean["nested"] == ["[REDACTED]!", 1, None]
    assert clean["error"] == {"message": "echo [REDACTED]", "raw_body": '{"k": "[REDACTED]"}'}
    assert clean["request"] == record["request"] and clean["usage"] == {"prompt_tokens": 3}
    assert redact_record(record, []) is record
    assert redact("short abc", ["abc"]) == "short [REDACTED]"  # a short key as a whole word: an echo
    assert redact("abcde xabc", ["abc"]) == "abcde xabc"  # ... but not inside other words


def test_retry_after_headers():
    now = datetime.now(UTC)
    assert retry_after(_status_error(429, b"", {"retry-after-ms": "1500"})) == 1.5
    assert retry_after(_status_error(429, b"", {"Retry-After": "7"})) == 7.0
    later = email.utils.format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert 25 < retry_after(_status_error(429, b"", {"Retry-After": later})) <= 30  # type: ignore[operator]
    assert retry_after(_status_error(429, b"", {"Retry-After": "soon"})) is None
    assert retry_after(_status_error(429, b"", {"Retry-After": "-5"})) == 0.0
    assert retry_after(_status_error(429, b"", {})) is None
    assert retry_after(TimeoutError()) is None


def test_default_validator():
    assert default_validator("a") and not default_validator("  \n") and not default_validator(None)


# requests of a panel ----------------------------------------------------------------------
def test_panel_requests_and_respondent_columns():
    panel = Panel("p", ("m", "n"), (0.2, 1.0), (0.9,), (1, 2), samples=2, max_tokens=16, cards={"m": CARD})
    items = [("q1", [("user", "a")]), ("q2", [("user", "b")])]
    reqs = panel_requests(panel, items, "v1")
    assert len(reqs) == 2 * 2 * 2 * 2 * 2
    assert [r.sample for r in reqs[:4]] == [0, 1, 0, 1] and reqs[0].prompt_version == "v1"
    few = panel_requests(panel, items, "v1", models=["n"], respondents_per_model=1)
    assert {r.model for r in few} == {"n"} and len(few) == 2 * 2
    assert {(r.temperature, r.seed) for r in few} == {(0.2, 1)}
    assert respondent_columns(reqs[0], CARD) == {
        "respondent": Respondent("m", 0.2, 0.9, 1).id,
        "model": "m",
        "family": "F",
        "params_b": 1.0,
        "training_stage": "instruct",
        "temperature": 0.2,
        "top_p": 0.9,
        "seed": 1,
    }
    assert Respondent("m", 0.2, 0.9, 1).id == "m|t=0.2|p=0.9|s=1"


# misses, plans and replay -----------------------------------------------------------------
def _record(req: Request, status: str = "ok", final: bool = True, text: str | None = "a") -> dict:
    canon = req.canonical(CARD)
    rec = {"key": req.key(CARD), "request": canon, "attempt": 1, "status": status, "final": final}
    rec |= {"timestamp": "2026-01-01T00:00:00Z", "text": text, "usable": status == "ok" and bool(text)}
    if status == "error":
        rec["error"] = {"type": "http_500", "message": "x", "status_code": 500, "raw_body": None}
    return rec


def test_misses_plan_and_retry_choices(tmp_path: Path):
    reqs = [replace(REQ, prompt_id=f"p{i}") for i in range(6)]
    store = ResponseStore(tmp_path)
    store.append(_record(reqs[0]))
    store.append(_record(reqs[1], status="error", text=None))  # an HTTP 500 error: nothing was paid
    store.append(_record(reqs[2], final=False, status="error", text=None))
    paid = _record(reqs[3], status="error", text=None)
    paid["error"] = {"type": "malformed_response", "message": "x", "status_code": None, "raw_body": "{"}
    store.append(paid)  # given up after a maybe-paid attempt
    store.append({**_record(reqs[4]), "status": "sent", "final": False})  # a call lost at a kill
    live = LLMRunner({"m": CARD}, store, mode="live", progress=False, retry=())
    assert [live.state(r.key(CARD)) for r in reqs] == ["answered", "failed", "new", "given_up", "lost", "new"]
    assert live.misses(reqs + [reqs[2]]) == [reqs[1], reqs[2], reqs[5]]  # duplicates once
    every = LLMRunner({"m": CARD}, store, mode="live", progress=False, retry=("failed", "lost", "damaged"))
    assert every.misses(reqs) == reqs[1:]
    assert LLMRunner({"m": CARD}, store, mode="live", retry="lost").misses(reqs) == [reqs[1], reqs[2], reqs[4], reqs[5]]
    plan = live.plan(reqs)
    assert (plan.requested, plan.stored, plan.to_call, plan.damaged, plan.lost, plan.given_up) == (6, 2, 3, 0, 1, 1)
    assert plan.est_completion_tokens == 3 * 64 and plan.per_model["m"]["to_call"] == 3
    assert plan.est_prompt_tokens == 3 * (2 + 4 + 8)
    assert plan.est_cost_usd == pytest.approx(CARD.cost(plan.est_prompt_tokens, 3 * 64))
    assert (every.plan(reqs).to_call, every.plan(reqs).lost, every.plan(reqs).given_up) == (5, 0, 0)
    replay = LLMRunner({"m": CARD}, store, mode="replay", progress=False)
    assert replay.misses(reqs) == [reqs[2], reqs[4], reqs[5]]  # replay returns stored errors as they are
    with pytest.raises(ValueError, match="mode must be one of"):
        LLMRunner({"m": CARD}, store, mode="dry")
    with pytest.raises(KeyError, match="no model card for 'ghost'"):
        live.plan([replace(REQ, model="ghost")])


def test_retry_choices_come_from_the_argument_or_the_environment(tmp_path: Path, monkeypatch):
    store = ResponseStore(tmp_path)
    monkeypatch.delenv("VALUELEX_RETRY", raising=False)
    assert LLMRunner({"m": CARD}, store, mode="live").retry == frozenset()
    monkeypatch.setenv("VALUELEX_RETRY", "failed, lost,")
    assert LLMRunner({"m": CARD}, store, mode="live").retry == {"failed", "lost"}
    assert LLMRunner({"m": CARD}, store, mode="live", retry=["damaged"]).retry == {"damaged"}
    monkeypatch.setenv("VALUELEX_RETRY", "faild")
    with pytest.raises(UserError) as err:
        LLMRunner({"m": CARD}, store, mode="live")
    assert str(err.value) == "VALUELEX_RETRY: unknown retry choice 'faild' (choices: failed, damaged, lost)"


def test_plan_text():
    plan = Plan(10, 4, 6, 1000, 2000, 1.5, {"m": {"to_call": 6, "cost_usd": 1.5}}, damaged=2, lost=1, given_up=3)
    assert str(plan).splitlines() == [
        "10 requests: 4 already stored, 6 to call; at most ~1,000 prompt + 2,000 completion tokens, "
        "estimated cost at list price $1.50",
        "  2 not asked: their only record in the store is damaged (listed when it was loaded); repair the lines, "
        "or pass --retry-damaged to pay for them again",
        "  1 not asked: their call was sent by a run killed before the answer was stored (maybe paid); "
        "pass --retry-lost to ask them again",
        "  3 of the stored are errors given up after a maybe-paid attempt; --retry-failed asks them again",
        "  m: 6 calls, $1.50",
    ]
    assert plan.held == 3


def test_replay_names_a_request_whose_only_record_is_damaged(tmp_path: Path, capsys):
    reqs = [replace(REQ, prompt_id=f"p{i}") for i in range(3)]
    lines = [canonical_json({"schema": 1, **_record(r)}) for r in reqs]
    shard = tmp_path / "m.jsonl"
    shard.write_text(lines[0] + "\n" + lines[1][:-5] + "\n")  # the last record lost its end: not JSON
    store = ResponseStore(tmp_path)
    assert f"{shard}:2: not JSON" in capsys.readouterr().err
    runner = LLMRunner({"m": CARD}, store, mode="replay", progress=False)
    with pytest.raises(StoreMiss) as err:
        runner.run(reqs)
    lines_of = str(err.value).splitlines()
    with pytest.raises(json.JSONDecodeError) as bad:
        json.loads(lines[1][:-5])
    assert lines_of[0] == f"replay mode: 2 of 3 requests are not in the store {tmp_path}:"
    assert lines_of[1] == (
        f"  {reqs[1].describe()}: its only record is damaged "
        f"({shard}:2: not JSON ({bad.value.msg}; column {bad.value.colno}))"
    )
    assert lines_of[2] == f"  {reqs[2].describe()}"
    assert LLMRunner({"m": CARD}, store, mode="live").plan(reqs).damaged == 1
    assert runner.run(reqs[:1])[0]["text"] == "a" and runner.report.hits == 1


def test_replay_lists_at_most_five_misses(tmp_path: Path):
    reqs = [replace(REQ, prompt_id=f"p{i}") for i in range(7)]
    with pytest.raises(StoreMiss) as err:
        LLMRunner({"m": CARD}, ResponseStore(tmp_path), mode="replay").run(reqs)
    assert str(err.value).splitlines()[-2:] == ["  ... and 2 more", "Run in live mode to make these calls."]
    assert len(str(err.value).splitlines()) == 1 + 5 + 2


def test_limits_defaults_are_documented_choices():
    limits = Limits()
    assert (limits.timeout_s, limits.max_retries, limits.max_reasks, limits.max_retry_after_s) == (120.0, 5, 2, 120.0)
    assert (limits.concurrency, limits.rpm, limits.tpm) == (8, None, None)
    assert (limits.backoff_base_s, limits.backoff_max_s) == (0.5, 60.0)


# retries, waits and limits ----------------------------------------------------------------
def test_which_statuses_are_retried():
    retried = {408, 409, 425, 429, 500, 502, 503, 504, 529}  # the specification, not read from the module
    for status in range(400, 600):
        info, again = describe_failure(_status_error(status, b"x"), None, [], 1.0)
        assert info["type"] == f"http_{status}" and again is (status in retried), status


def test_a_failure_message_is_kept_short():
    info, _ = describe_failure(KeyError("x" * 1000), None, [], 1.0)
    assert len(info["message"]) == 500 and info["message"].startswith("KeyError: 'xxx")


def test_raw_bodies_are_capped_at_64_kib():
    assert body_text(b"y" * 65_536, []) == "y" * 65_536
    assert body_text(b"y" * 65_537, []) == "y" * 65_536 + "[... 1 more bytes]"


def _waits(monkeypatch, limits: Limits, retries: int, exc: BaseException) -> list[float]:
    """The waits _wait_before_retry asks for (asyncio.sleep recorded, jitter fixed at its middle)."""
    import asyncio

    import valuelex.llm.runner as llm

    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(llm.asyncio, "sleep", sleep)
    monkeypatch.setattr(llm.random, "random", lambda: 0.5)
    runner = LLMRunner({"m": CARD}, ResponseStore(Path("/nonexistent/store"), announce=False), limits=limits)
    asyncio.run(runner._wait_before_retry(retries, exc, CARD))
    return waits


def test_backoff_doubles_up_to_its_maximum(monkeypatch):
    limits = Limits(backoff_base_s=0.5, backoff_max_s=3.0)
    assert [_waits(monkeypatch, limits, k, TimeoutError())[0] for k in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_jitter_scales_the_backoff_between_half_and_one_and_a_half(monkeypatch):
    import asyncio

    import valuelex.llm.runner as llm

    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(llm.asyncio, "sleep", sleep)
    runner = LLMRunner({"m": CARD}, ResponseStore(Path("/nonexistent/store"), announce=False), limits=Limits())
    for draw in (0.0, 0.999):
        monkeypatch.setattr(llm.random, "random", lambda d=draw: d)
        asyncio.run(runner._wait_before_retry(2, TimeoutError(), CARD))
    assert waits == [pytest.approx(0.5), pytest.approx(1.499)]  # backoff 1 s at the second retry


def test_retry_after_wins_when_longer_and_is_capped_and_announced(monkeypatch, capsys):
    limits = Limits(backoff_base_s=0.5, max_retry_after_s=30.0)
    assert _waits(monkeypatch, limits, 1, _status_error(429, b"", {"Retry-After": "0.1"})) == [0.5]  # backoff longer
    assert _waits(monkeypatch, limits, 1, _status_error(429, b"", {"Retry-After": "9.5"})) == [9.5]
    assert capsys.readouterr().err == ""  # a short wait is not announced
    assert _waits(monkeypatch, limits, 1, _status_error(429, b"", {"Retry-After": "10"})) == [10.0]
    assert capsys.readouterr().err == "m: the server asked to wait 10 s before retrying (Retry-After)\n"
    assert _waits(monkeypatch, limits, 1, _status_error(429, b"", {"Retry-After": "100000"})) == [30.0]
    assert capsys.readouterr().err == (
        "m: the server asked to wait 100000 s before retrying (Retry-After), capped to 30 s (Limits.max_retry_after_s)\n"
    )


class _Clock:
    """A fake clock for the rate limiter: sleeping moves time on."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


def _limited(monkeypatch, rpm, tpm, tokens: list[float], gap: float = 0.0) -> _Clock:
    import asyncio

    import valuelex.llm.limits as llm

    clock = _Clock()
    monkeypatch.setattr(llm.time, "monotonic", clock.monotonic)
    monkeypatch.setattr(llm.asyncio, "sleep", clock.sleep)

    async def go() -> None:
        limiter = llm.RateLimiter(rpm, tpm)
        for t in tokens:
            await limiter.acquire(t)
            clock.now += gap

    asyncio.run(go())
    return clock


def test_requests_per_minute(monkeypatch):
    assert _limited(monkeypatch, None, None, [1] * 5).sleeps == []
    clock = _limited(monkeypatch, 2, None, [1, 1, 1], gap=10.0)
    assert clock.sleeps == [40.0]  # the third waits until the first is a minute old
    assert _limited(monkeypatch, 3, None, [1, 1, 1], gap=10.0).sleeps == []


def test_tokens_per_minute(monkeypatch):
    assert _limited(monkeypatch, None, 100, [60, 40], gap=1.0).sleeps == []  # exactly at the limit
    assert _limited(monkeypatch, None, 100, [60, 41], gap=1.0).sleeps == [59.0]
    assert _limited(monkeypatch, None, 100, [500]).sleeps == []  # one request larger than the limit still goes
    assert _limited(monkeypatch, None, 100, [60, 60], gap=60.0).sleeps == []  # the first has left the window


def test_a_wait_is_never_shorter_than_ten_milliseconds(monkeypatch):
    clock = _limited(monkeypatch, 1, None, [1, 1], gap=59.999)
    assert clock.sleeps == [0.01]


def test_effective_limits_take_the_tighter_of_runner_and_card():
    from valuelex.llm.limits import effective_limits

    assert effective_limits(Limits(concurrency=8), CARD) == (8, None, None)
    card = replace(CARD, concurrency=2, rpm=60.0, tpm=None)
    assert effective_limits(Limits(concurrency=8, rpm=100, tpm=5000), card) == (2, 60.0, 5000)
    assert effective_limits(Limits(concurrency=1, rpm=30), card) == (1, 30, None)
    assert effective_limits(Limits(concurrency=0), CARD) == (1, None, None)
    assert effective_limits(Limits(concurrency=8), replace(CARD, provider="llama_cpp"))[0] == 1


# small things -------------------------------------------------------------------------------
def test_token_estimates():
    from valuelex.llm.limits import estimate_tokens

    assert (estimate_tokens(""), estimate_tokens("abc"), estimate_tokens("abcdefgh"), estimate_tokens("x" * 9)) == (
        1,
        1,
        2,
        2,
    )
    assert REQ.estimated_tokens() == (2 + 4 + 8, 64)  # "Be brief." and "What do you value?", 8 for the roles


def test_keys_of_six_characters_are_redacted():
    assert redact("key abc123 here", ["abc123"]) == "key [REDACTED] here"
    assert redact("a Bearer tok3n.value here", []) == "a [REDACTED] here"
    assert redact("sk-12345 and sk-123456", []) == "sk-12345 and [REDACTED]"


def test_more_retry_after_forms():
    assert retry_after(_status_error(429, b"", {"retry-after-ms": "-5"})) == 0.0
    naive = email.utils.format_datetime(datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=20))
    assert naive.endswith("-0000") and 15 < retry_after(_status_error(429, b"", {"Retry-After": naive})) <= 20  # type: ignore[operator]
    assert retry_after(_status_error(429, b"", {"retry-after-ms": "soon"})) is None


def test_a_completions_card_without_template_sends_the_question():
    _, body = request_body(replace(TEXT_CARD, prompt_template=None), REQ)
    assert body["prompt"] == "What do you value?"


def test_the_stop_sequences_are_part_of_a_completion_request_key():
    other = replace(TEXT_CARD, stop=("\nQuestion:",))
    assert REQ.key(other) != REQ.key(TEXT_CARD)
    assert REQ.canonical(TEXT_CARD)["stop"] == ["\nQ:"] and "stop" not in REQ.canonical(CARD)


def test_run_works_inside_a_running_event_loop(tmp_path: Path):
    """In Jupyter a loop is already running: run() then uses a thread of its own."""
    import asyncio

    store = ResponseStore(tmp_path)
    store.append(_record(REQ))
    runner = LLMRunner({"m": CARD}, store, mode="replay", progress=False)

    async def inside() -> list[dict]:
        return runner.run([REQ])

    assert asyncio.run(inside())[0]["text"] == "a"


def test_replay_with_exactly_five_misses_lists_them_all(tmp_path: Path):
    reqs = [replace(REQ, prompt_id=f"p{i}") for i in range(5)]
    with pytest.raises(StoreMiss) as err:
        LLMRunner({"m": CARD}, ResponseStore(tmp_path), mode="replay").run(reqs)
    assert "more" not in str(err.value) and len(str(err.value).splitlines()) == 1 + 5 + 1


def test_a_request_with_a_final_error_and_a_damaged_line_is_not_counted_as_damaged(tmp_path: Path):
    store = ResponseStore(tmp_path)
    store.append(_record(REQ, status="error", text=None))
    (tmp_path / "m.jsonl").open("a").write(canonical_json({"schema": 1, **_record(REQ)})[:-9] + "\n")
    store = ResponseStore(tmp_path, announce=False)
    assert store.damaged(REQ.key(CARD)) and LLMRunner({"m": CARD}, store, mode="live").plan([REQ]).damaged == 0


def test_a_multi_turn_conversation_as_a_plain_prompt():
    convo = replace(REQ, messages=(("system", "A."), ("system", "B."), ("user", "one"), ("assistant", "two")))
    _, body = request_body(TEXT_CARD, convo)
    assert body["prompt"] == "A.\nB.\n\nQ: one\ntwo\nA:"


def test_redaction_never_touches_the_key_of_a_record():
    record = {"key": "0123456789abcdef0123456789abcdef", "request": {}, "text": "0123456789abcdef"}
    clean = redact_record(record, ["0123456789abcdef"])
    assert clean["key"] == record["key"] and clean["text"] == "[REDACTED]"


def test_requests_are_frozen_values_with_documented_defaults():
    import dataclasses

    bare = Request("m", (("user", "q"),), 0.7, 1.0, 8)
    assert (bare.seed, bare.sample, bare.prompt_id, bare.prompt_version) == (None, 0, "", "")
    assert hash(bare) == hash(Request("m", (("user", "q"),), 0.7, 1.0, 8)) and len({bare, bare}) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        bare.sample = 1  # type: ignore[misc]
    made = Request.for_respondent(Respondent("m", 0.2, 0.9, 3), [("user", "q")], max_tokens=16)
    assert (made.sample, made.seed, made.temperature, made.max_tokens, made.messages) == (
        0,
        3,
        0.2,
        16,
        (("user", "q"),),
    )


def test_runner_defaults(tmp_path: Path):
    runner = LLMRunner({"m": CARD}, ResponseStore(tmp_path), mode="live")
    assert runner.progress is True and runner.retry == frozenset() and runner.limits == Limits()
    assert LLMRunner({"m": CARD}, ResponseStore(tmp_path)).mode == "replay"


def test_misses_need_one_key_per_request(tmp_path: Path):
    runner = LLMRunner({"m": CARD}, ResponseStore(tmp_path), mode="live")
    with pytest.raises(ValueError, match="zip"):
        runner.misses([REQ, replace(REQ, sample=1)], [REQ.key(CARD)])


def test_plan_costs_per_model(tmp_path: Path):
    other = replace(CARD, name="n", price_input=10.0, price_output=20.0)
    reqs = [REQ, replace(REQ, model="n"), replace(REQ, model="n", sample=1)]
    plan = LLMRunner({"m": CARD, "n": other}, ResponseStore(tmp_path), mode="live").plan(reqs)
    assert plan.per_model == {
        "m": {"to_call": 1, "cost_usd": pytest.approx(CARD.cost(14, 64))},
        "n": {"to_call": 2, "cost_usd": pytest.approx(2 * other.cost(14, 64))},
    }
    assert plan.est_cost_usd == pytest.approx(CARD.cost(14, 64) + 2 * other.cost(14, 64))
    assert Plan(1, 1, 0, 0, 0, 0.0, {}).damaged == 0 and "damaged" not in str(Plan(1, 1, 0, 0, 0, 0.0, {}))


def test_a_retry_after_date_in_the_past_means_now():
    past = email.utils.format_datetime(datetime.now(UTC) - timedelta(seconds=30), usegmt=True)
    assert retry_after(_status_error(429, b"", {"Retry-After": past})) == 0.0


def test_zero_tokens_are_a_count():
    parsed = parse_completion(chat_body(usage={"prompt_tokens": 0, "completion_tokens": 0}), "chat")
    assert parsed["usage"] == {"prompt_tokens": 0, "completion_tokens": 0}


def test_the_canonical_request_is_pinned():
    """The stored dataset is keyed by this form: renaming a field would orphan every committed record."""
    assert REQ.canonical(CARD) == {
        "model": "m",
        "model_id": "served-m",
        "api": "chat",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What do you value?"}],
        "params": {"temperature": 0.7, "top_p": 0.95, "max_tokens": 64, "seed": 11},
        "sample": 0,
        "prompt_id": "p1",
        "prompt_version": "",
    }
    assert REQ.key(CARD) == "89ddea0d8cc7d7b2c7b9d8f76e9c50f1"


def test_the_committed_elicitation_requests_all_have_their_records():
    from valuelex.elicit import build_requests, load_prompts
    from valuelex.llm.cards import load_panel

    panel = load_panel("local")
    store = ResponseStore(Path(__file__).parent.parent / "data" / "raw" / "elicitation", announce=False)
    keys = [r.key(panel.cards[r.model]) for r in build_requests(panel, load_prompts())]
    assert len(keys) == 1800 and all(store.get(k) is not None for k in keys)


# mutants of issue 19 ---------------------------------------------------------------------------
KEY = "sk-Mut4nt-k3y-0042"


def test_a_key_escaped_as_python_bytes_or_percent_encoded_is_redacted():
    python = "".join(f"\\x{ord(c):02x}" for c in KEY)
    percent = "".join(f"%{ord(c):02X}" for c in KEY)
    assert redact_values(f"b'{python}'", [KEY]) == "b'[REDACTED]'"
    assert redact_values(f"?key={percent}&x=1", [KEY]) == "?key=[REDACTED]&x=1"  # a % and no backslash
    assert redact_values(f"hex {KEY.encode().hex()}", [KEY]) == f"hex {KEY.encode().hex()}"  # not an escape form


def test_a_long_body_keeps_its_bad_bytes_visible_too():
    raw = b"\xff" + b"y" * MAX_RAW_BODY
    kept = body_text(raw, [KEY])
    assert kept.startswith("\\xffyyy") and kept.endswith("[... 1 more bytes]")


def test_plan_defaults_hold_nothing_back():
    plan = Plan(1, 1, 0, 0, 0, 0.0, {})
    assert (plan.damaged, plan.lost, plan.given_up, plan.held) == (0, 0, 0, 0)
    assert str(plan).count("\n") == 0


def test_a_cut_key_at_the_end_of_a_text_is_removed_once():
    key = "EDACTED]" + "x7y8z9w0"  # after its prefix is removed, the text ends with the prefix of... itself
    assert redact_values("tail " + key[:12], [key]) == "tail [REDACTED]"
    tail_key = "x7y8z9w0[REDACTED"  # its last 9 characters begin the marker that replaces its cut head
    assert redact_values(tail_key[-12:] + " head", [tail_key]) == "[REDACTED] head"


def test_no_usable_answer_names_the_error_types(tmp_path: Path):
    from valuelex.llm.runner import NoUsableAnswers

    store = ResponseStore(tmp_path)
    reqs = [replace(REQ, prompt_id=f"p{i}") for i in range(3)]
    store.append(_record(reqs[0], status="error", text=None))
    store.append(_record(reqs[1], text=""))
    store.append({**_record(reqs[2], text="??"), "usable": False})  # text, but not usable (a validator said no)
    with pytest.raises(NoUsableAnswers) as err:
        LLMRunner({"m": CARD}, store, mode="replay", progress=False).run(reqs)
    assert "(http_500 x1, empty x1, unusable x1)" in str(err.value)


# issue 19: what the mutation run left alive ----------------------------------------------
def test_a_key_echoed_as_python_or_url_escapes_is_removed():
    key = "Kq7Zx"
    python = "".join(f"\\x{ord(c):02x}" for c in key)
    url = "".join(f"%{ord(c):02X}" for c in key)
    assert redact(f"key {python} and {url}.", [key]) == "key [REDACTED] and [REDACTED]."
    assert redact("100% of 5x, no key here", [key]) == "100% of 5x, no key here"


def test_a_long_body_with_bytes_that_are_not_utf8_is_kept_and_cut():
    raw = b"\xff" + b"x" * MAX_RAW_BODY
    text = body_text(raw, [])
    assert text.startswith("\\xffxxx") and text.endswith("[... 1 more bytes]")


def test_an_empty_plan_has_one_line():
    assert str(Plan(3, 3, 0, 0, 0, 0.0, {})).splitlines() == [
        "3 requests: 3 already stored, 0 to call; at most ~0 prompt + 0 completion tokens, "
        "estimated cost at list price $0.00"
    ]


def test_a_replay_with_no_usable_answer_names_the_errors(tmp_path: Path):
    store = ResponseStore(tmp_path)
    store.append(_record(REQ, status="error", text=None))
    with pytest.raises(NoUsableAnswers, match=r"not one of the 1 requests has a usable answer \(http_500 x1\)"):
        LLMRunner({"m": CARD}, store, mode="replay", progress=False).run([REQ])


def test_a_key_that_begins_another_key_leaves_no_tail_of_the_longer_one():
    """The longer key is matched first: a shorter key that is its prefix must not leave the rest behind."""
    short, long = "k3y-prefix-01", "k3y-prefix-01-tail-45"
    clean = redactor([short, long])
    assert redact(f"echo {long} and {short}", clean) == "echo [REDACTED] and [REDACTED]"


def test_a_cut_inside_a_multibyte_character_drops_the_partial_character():
    """The 64 KiB cut can fall inside a UTF-8 character (3 bytes each here): its bytes are dropped, not an error."""
    raw = ("\u20ac" * 30_000).encode("utf-8")  # 90,000 bytes; 65,536 is not a multiple of 3
    kept = body_text(raw, [])
    assert kept == "\u20ac" * (MAX_RAW_BODY // 3) + f"[... {len(raw) - MAX_RAW_BODY} more bytes]"


def test_run_report_prints_as_a_report_not_a_dataclass():
    from valuelex.llm.runner import RunReport

    report = RunReport(requested=120, hits=118, calls=2, sent=2)
    report.add_usage("m", 100, 40, 0.0)
    report.errors["http_401"] += 1
    for shown in (str(report), repr(report)):
        assert shown.startswith("LLM calls: 120 requests, 118 from the store, 2 answered now")
        assert "RunReport(" not in shown and "Counter(" not in shown and "{" not in shown
        assert "http_401  1" in shown and "Usage per model" in shown
    assert report.metrics()["errors"] == {"http_401": 1}
