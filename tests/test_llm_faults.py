"""The LLM layer against our fault-injecting OpenAI-compatible server, over real HTTP on loopback.

One batch mixes every fault the server can inject; the run must complete, record every failed
attempt as a non-final error record of the right type, honour Retry-After, re-ask empty answers
a bounded number of times, and replay afterwards without any server.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

import pytest

from tests.fault_server import FaultServer, answer_text, write_card
from valuelex.config import MissingKeyError, load_model_cards
from valuelex.llm import Limits, LLMRunner, Request
from valuelex.store import ResponseStore, StoreMiss

TIMEOUT_S = 1.0
LIMITS = Limits(concurrency=8, timeout_s=TIMEOUT_S, max_retries=3, max_reasks=2, backoff_base_s=0.05)
HANG_S = 4.0

# message -> the attempts it must produce, in order: ("ok", usable) or ("error", type); the last is final.
PLAN: dict[str, list[tuple[str, object]]] = {
    "plain question, no fault": [("ok", True)],
    "[fault:429] rate limited once": [("error", "http_429"), ("ok", True)],
    "[fault:500] server error once": [("error", "http_500"), ("ok", True)],
    "[fault:hang] hangs past the timeout once": [("error", "timeout"), ("ok", True)],
    "[fault:malformed] truncated JSON once": [("error", "malformed_response"), ("ok", True)],
    "[fault:badshape] no choices once": [("error", "malformed_response"), ("ok", True)],
    "[fault:empty] empty once": [("ok", False), ("ok", True)],
    "[fault:empty*inf] always empty": [("ok", False), ("ok", False), ("ok", False)],
    "[fault:500*inf] always failing": [("error", "http_500")] * 4,
    "[fault:401echo] bad key": [("error", "http_401")],
    "[fault:429,500,malformed] three faults in a row": [
        ("error", "http_429"),
        ("error", "http_500"),
        ("error", "malformed_response"),
        ("ok", True),
    ],
}


def make_requests(model: str, texts: list[str], version: str = "v1") -> list[Request]:
    return [
        Request(
            model, (("system", "Answer briefly."), ("user", t)), 0.7, 1.0, 32, prompt_id=f"q{i}", prompt_version=version
        )
        for i, t in enumerate(texts)
    ]


@pytest.fixture(scope="module")
def server():
    with FaultServer(hang_s=HANG_S, retry_after=1) as srv:
        yield srv


@pytest.fixture(scope="module")
def cards_dir(server: FaultServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cards")
    write_card(folder, "fault-chat", server.base_url)
    write_card(folder, "fault-text", server.base_url, api="completions")
    write_card(folder, "fault-nokey", server.base_url, api_key_env="VALUELEX_TEST_ABSENT_KEY")
    return folder


@pytest.fixture(scope="module")
def fault_run(server: FaultServer, cards_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """The mixed-fault batch, run once live; the tests below look at it from different sides."""
    mp = pytest.MonkeyPatch()
    mp.setenv("VALUELEX_TEST_KEY", "sk-test-fault-run-0000")
    server.reset()
    root = tmp_path_factory.mktemp("store")
    cards = load_model_cards(cards_dir)
    requests = make_requests("fault-chat", list(PLAN))
    runner = LLMRunner(cards, ResponseStore(root), mode="live", limits=LIMITS, progress=False)
    started = time.monotonic()
    records = runner.run(requests)
    elapsed = time.monotonic() - started
    stats = server.stats()
    yield {"root": root, "cards": cards, "requests": requests, "records": records, "stats": stats}
    mp.undo()
    assert elapsed < 20, f"the fault batch took {elapsed:.1f} s"


def test_run_completes_with_one_final_record_per_request(fault_run):
    requests, records = fault_run["requests"], fault_run["records"]
    assert len(records) == len(requests) == len(PLAN)
    for req, rec in zip(requests, records, strict=True):
        assert rec is not None and rec["final"] is True, req.describe()
        assert rec["request"]["messages"][-1]["content"] == req.messages[-1][1]
        expected_last = PLAN[req.messages[-1][1]][-1]
        if expected_last[0] == "ok":
            assert rec["status"] == "ok" and rec["usable"] is expected_last[1]
        else:
            assert rec["status"] == "error" and rec["error"]["type"] == expected_last[1]
            assert rec["usable"] is False and rec["text"] is None


def test_every_attempt_is_recorded_with_its_type(fault_run):
    attempts = defaultdict(list)
    for rec in ResponseStore(fault_run["root"]).records():
        attempts[rec["request"]["messages"][-1]["content"]].append(rec)
    assert set(attempts) == set(PLAN)
    for text, expected in PLAN.items():
        got = attempts[text]
        assert [r["attempt"] for r in got] == list(range(1, len(expected) + 1)), text
        assert [r["final"] for r in got] == [False] * (len(expected) - 1) + [True], text
        for rec, (status, detail) in zip(got, expected, strict=True):
            assert rec["status"] == status, text
            if status == "error":
                assert rec["error"]["type"] == detail, (text, rec["error"])
            else:
                assert rec["usable"] is detail, text
                assert rec["usage"]["completion_tokens"] == len((rec["text"] or "").split())
        # the server saw exactly as many requests as the store holds attempts: nothing unrecorded
        assert fault_run["stats"]["received"][text] == len(expected), text


def test_answers_are_stored_verbatim(fault_run):
    for req, rec in zip(fault_run["requests"], fault_run["records"], strict=True):
        if rec["status"] == "ok" and rec["usable"]:
            body = {"temperature": req.temperature, "top_p": req.top_p, "seed": req.seed}
            assert rec["text"] == answer_text("fault-model", req.messages[-1][1], body)
            assert rec["finish_reason"] == "stop"
            assert rec["served_model"] == "fault-model"


def test_429_waits_at_least_retry_after(fault_run):
    arrivals = fault_run["stats"]["arrivals"]
    for text in ("[fault:429] rate limited once", "[fault:429,500,malformed] three faults in a row"):
        gap = arrivals[text][1] - arrivals[text][0]
        assert gap >= 1.0, f"{text}: retried after {gap:.3f} s, Retry-After was 1 s"
    # a 500 without Retry-After is retried with the short backoff, not a long wait
    five = arrivals["[fault:500] server error once"]
    assert five[1] - five[0] < 1.0


def test_hang_is_cut_at_the_client_timeout(fault_run):
    recs = [
        r
        for r in ResponseStore(fault_run["root"]).records()
        if r["request"]["messages"][-1]["content"].startswith("[fault:hang]")
    ]
    assert recs[0]["error"]["type"] == "timeout"
    assert TIMEOUT_S * 0.9 <= recs[0]["latency_s"] < HANG_S


def test_error_messages_do_not_keep_the_key(fault_run):
    rec = next(r for r in fault_run["records"] if r["error"] and r["error"]["type"] == "http_401")
    assert rec["error"]["status_code"] == 401
    assert "Incorrect API key provided: [REDACTED]" in rec["error"]["message"]
    assert "sk-test-fault-run" not in (fault_run["root"] / "fault-chat.jsonl").read_text()


def test_report_counts_calls_tokens_and_cost(fault_run):
    recs = ResponseStore(fault_run["root"]).records()
    oks = [r for r in recs if r["status"] == "ok"]
    prompt = sum(r["usage"]["prompt_tokens"] for r in oks)
    completion = sum(r["usage"]["completion_tokens"] for r in oks)
    card = fault_run["cards"]["fault-chat"]
    assert sum(r["cost_usd"] for r in oks) == pytest.approx(card.cost(prompt, completion))
    usage = ResponseStore(fault_run["root"]).usage_by_model()["fault-chat"]
    assert usage["attempts"] == sum(len(v) for v in PLAN.values())
    assert usage["final"] == len(PLAN)
    assert usage["errors"] == sum(s == "error" for v in PLAN.values() for s, _ in v)
    assert usage["prompt_tokens"] == prompt and usage["completion_tokens"] == completion


def test_replay_returns_identical_texts_without_any_server(fault_run, server: FaultServer):
    before = server.stats()["total"]
    dead = {"fault-chat": "http://127.0.0.1:9/v1"}  # nothing listens there
    replay = LLMRunner(
        fault_run["cards"], ResponseStore(fault_run["root"]), mode="replay", endpoints=dead, progress=False
    )
    again = replay.run(fault_run["requests"])
    assert [r["text"] for r in again] == [r["text"] for r in fault_run["records"]]
    assert [r["key"] for r in again] == [r["key"] for r in fault_run["records"]]
    assert replay.report.calls == 0 and replay.report.hits == len(PLAN)
    assert server.stats()["total"] == before


def test_replay_miss_names_the_model_and_prompt(fault_run):
    replay = LLMRunner(fault_run["cards"], ResponseStore(fault_run["root"]), mode="replay", progress=False)
    missing = make_requests("fault-chat", ["never asked"], version="v9")
    with pytest.raises(StoreMiss) as err:
        replay.run(fault_run["requests"][:3] + missing)
    assert "1 of 4 requests" in str(err.value)
    assert "model=fault-chat" in str(err.value) and "prompt=q0@v9" in str(err.value)


def test_live_rerun_calls_only_the_misses(fault_run, server: FaultServer, monkeypatch):
    monkeypatch.setenv("VALUELEX_TEST_KEY", "sk-test-fault-run-0000")
    server.reset()
    new = make_requests("fault-chat", ["a new question", "[fault:500] a new failing question"], version="v2")
    runner = LLMRunner(fault_run["cards"], ResponseStore(fault_run["root"]), mode="live", limits=LIMITS, progress=False)
    records = runner.run(fault_run["requests"] + new)
    assert [r["text"] for r in records[: len(PLAN)]] == [r["text"] for r in fault_run["records"]]
    assert all(r["status"] == "ok" and r["usable"] for r in records[len(PLAN) :])
    stats = server.stats()
    # the misses, and the two requests whose final record was an error (asked again by default)
    assert stats["received"] == {
        "a new question": 1,
        "[fault:500] a new failing question": 2,
        "[fault:401echo] bad key": 1,
        "[fault:500*inf] always failing": LIMITS.max_retries + 1,
    }
    assert runner.report.hits == len(PLAN) - 2 and runner.report.calls == 2


def test_live_rerun_without_retry_errors_calls_only_the_misses(fault_run, server: FaultServer, monkeypatch):
    monkeypatch.setenv("VALUELEX_TEST_KEY", "sk-test-fault-run-0000")
    server.reset()
    new = make_requests("fault-chat", ["another new question"], version="v3")
    store = ResponseStore(fault_run["root"])
    runner = LLMRunner(fault_run["cards"], store, mode="live", limits=LIMITS, progress=False, retry_errors=False)
    records = runner.run(fault_run["requests"] + new)
    assert server.stats()["received"] == {"another new question": 1}
    assert runner.report.hits == len(PLAN)
    assert records[-1]["status"] == "ok"


def test_a_success_after_a_stored_failure_becomes_the_answer(fault_run):
    """The store keeps the first success over an earlier final error, also after a reload."""
    store = ResponseStore(fault_run["root"])
    by_text = {r["request"]["messages"][-1]["content"]: r for r in store.final_records()}
    failed = by_text["[fault:500*inf] always failing"]
    assert failed["status"] == "error"
    store.append({**failed, "attempt": 99, "status": "ok", "usable": True, "text": "recovered", "error": None})
    assert store.get(failed["key"])["text"] == "recovered"
    reloaded = ResponseStore(fault_run["root"])
    assert reloaded.get(failed["key"])["text"] == "recovered"


def test_completions_api_goes_through_the_prompt_template(server: FaultServer, cards_dir: Path, tmp_path, monkeypatch):
    monkeypatch.setenv("VALUELEX_TEST_KEY", "sk-" + "test-completions-0000")
    server.reset()
    cards = load_model_cards(cards_dir)
    runner = LLMRunner(cards, ResponseStore(tmp_path), mode="live", limits=LIMITS, progress=False)
    (rec,) = runner.run(make_requests("fault-text", ["[fault:500] what matters to you?"]))
    prompt = "Answer briefly.\n\nQuestion: [fault:500] what matters to you?\nAnswer:"
    assert server.stats()["received"] == {prompt: 2}
    assert rec["status"] == "ok" and rec["usable"] and rec["attempt"] == 2
    assert rec["text"] == answer_text("fault-model", prompt, {"temperature": 0.7, "top_p": 1.0, "seed": None})
    assert rec["request"]["prompt_template"] == cards["fault-text"].prompt_template


def test_missing_key_fails_before_any_request(server: FaultServer, cards_dir: Path, tmp_path, monkeypatch):
    monkeypatch.delenv("VALUELEX_TEST_ABSENT_KEY", raising=False)
    server.reset()
    runner = LLMRunner(load_model_cards(cards_dir), ResponseStore(tmp_path), mode="live", progress=False)
    with pytest.raises(MissingKeyError, match="VALUELEX_TEST_ABSENT_KEY"):
        runner.run(make_requests("fault-nokey", ["anyone there?"]))
    assert server.stats()["total"] == 0
    assert not any(tmp_path.iterdir())
