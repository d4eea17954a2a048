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

from valuelex.config import ModelCard, Panel, Respondent
from valuelex.llm import (
    MAX_RAW_BODY,
    Limits,
    LLMRunner,
    MalformedResponse,
    Plan,
    Request,
    _retry_after,
    body_text,
    default_validator,
    describe_failure,
    panel_requests,
    parse_completion,
    redact,
    redact_record,
    request_body,
    respondent_columns,
)
from valuelex.store import ResponseStore, StoreMiss, canonical_json

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
    assert redact("short abc", ["abc"]) == "short abc"  # values under 6 characters are not keys


def test_retry_after_headers():
    now = datetime.now(UTC)
    assert _retry_after(_status_error(429, b"", {"retry-after-ms": "1500"})) == 1.5
    assert _retry_after(_status_error(429, b"", {"Retry-After": "7"})) == 7.0
    later = email.utils.format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert 25 < _retry_after(_status_error(429, b"", {"Retry-After": later})) <= 30  # type: ignore[operator]
    assert _retry_after(_status_error(429, b"", {"Retry-After": "soon"})) is None
    assert _retry_after(_status_error(429, b"", {"Retry-After": "-5"})) == 0.0
    assert _retry_after(_status_error(429, b"", {})) is None
    assert _retry_after(TimeoutError()) is None


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
    cols = respondent_columns(reqs[0], CARD)
    assert cols["respondent"] == Respondent("m", 0.2, 0.9, 1).id == "m|t=0.2|p=0.9|s=1"
    assert (cols["family"], cols["training_stage"], cols["params_b"]) == ("F", "instruct", 1.0)


# misses, plans and replay -----------------------------------------------------------------
def _record(req: Request, status: str = "ok", final: bool = True, text: str | None = "a") -> dict:
    canon = req.canonical(CARD)
    rec = {"key": req.key(CARD), "request": canon, "attempt": 1, "status": status, "final": final}
    rec |= {"timestamp": "2026-01-01T00:00:00Z", "text": text}
    if status == "error":
        rec["error"] = {"type": "http_500", "message": "x", "status_code": 500, "raw_body": None}
    return rec


def test_misses_plan_and_retry_errors(tmp_path: Path):
    reqs = [replace(REQ, prompt_id=f"p{i}") for i in range(4)]
    store = ResponseStore(tmp_path)
    store.append(_record(reqs[0]))
    store.append(_record(reqs[1], status="error", text=None))
    store.append(_record(reqs[2], final=False, status="error", text=None))
    live = LLMRunner({"m": CARD}, store, mode="live", progress=False)
    assert live.misses(reqs + [reqs[3]]) == reqs[1:]  # errors asked again, duplicates once
    keep = LLMRunner({"m": CARD}, store, mode="live", progress=False, retry_errors=False)
    assert keep.misses(reqs) == reqs[2:]
    plan = live.plan(reqs)
    assert (plan.requested, plan.stored, plan.to_call, plan.damaged) == (4, 1, 3, 0)
    assert plan.est_completion_tokens == 3 * 64 and plan.per_model["m"]["to_call"] == 3
    assert plan.est_cost_usd == pytest.approx(CARD.cost(plan.est_prompt_tokens, 3 * 64))
    replay = LLMRunner({"m": CARD}, store, mode="replay", progress=False)
    assert replay.misses(reqs) == reqs[2:]  # replay returns stored errors as they are
    with pytest.raises(ValueError, match="mode must be one of"):
        LLMRunner({"m": CARD}, store, mode="dry")
    with pytest.raises(KeyError, match="no model card for 'ghost'"):
        live.plan([replace(REQ, model="ghost")])


def test_plan_text():
    plan = Plan(10, 4, 6, 1000, 2000, 1.5, {"m": {"to_call": 6, "cost_usd": 1.5}}, damaged=2)
    assert str(plan).splitlines() == [
        "10 requests: 4 already stored, 6 to call; at most ~1,000 prompt + 2,000 completion tokens, "
        "estimated cost at list price $1.50",
        "  2 of the requests to call have only damaged records in the store (listed when it was loaded); "
        "a live run asks them again",
        "  m: 6 calls, $1.50",
    ]


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
    column = lines[1][:-5].rindex('"') + 1  # where the string cut off by the damage starts
    assert lines_of[0] == f"replay mode: 2 of 3 requests are not in the store {tmp_path}:"
    assert lines_of[1] == (
        f"  {reqs[1].describe()}: its only record is damaged "
        f"({shard}:2: not JSON (Unterminated string starting at; column {column}))"
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
