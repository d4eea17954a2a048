"""The LLM layer against our fault-injecting OpenAI-compatible server, over real HTTP on loopback.

One batch mixes every fault the server can inject; the run must complete, record every failed
attempt as a non-final error record of the right type, honour Retry-After, re-ask empty answers
a bounded number of times, and replay afterwards without any server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

import pytest

from tests.fault_server import ODD_ANSWERS, FaultServer, answer_text, write_card
from valuelex.core import paths
from valuelex.core.errors import UserError
from valuelex.llm.cards import MissingKeyError, load_model_cards
from valuelex.llm.limits import Limits
from valuelex.llm.request import Request
from valuelex.llm.runner import AllCallsFailed, LLMRunner, NoUsableAnswers, UnansweredRequests
from valuelex.llm.store import ResponseStore, StoreMiss, StoreUnwritable

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
    "[fault:drip] trickles in past the deadline once": [("error", "timeout"), ("ok", True)],
    "[fault:echo200] echoes the key inside a good answer": [("ok", True)],
    "[fault:surrogate*inf] always a lone surrogate": [("error", "malformed_response")] * 4,
}
# Odd 200 answers (tests/fault_server.py): each once, then a good answer; the request stays isolated.
ODD = {kind: f"[fault:{kind}] an odd answer: {kind}" for kind in ODD_ANSWERS}
PLAN |= {text: [("error", "malformed_response"), ("ok", True)] for text in ODD.values()}
RAW_BODY_HOLDS = {  # what the stored raw body of each odd answer shows
    "list": '"content": [{"type": "text", "text": "honesty"}]',
    "int": '"content": 42',
    "surrogate": '"content": "honesty, \\ud83d"',
    "badutf8": '"content": "honesty, \\xff"',
    "nullchoice": '"choices": [null]',
    "strmessage": '"message": "honesty"',
    "badusage": '"prompt_tokens": "many"',
    "html": "<html><body>Gateway says hello</body></html>",
    "jsonlist": '[{"choices": []}]',
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
    attempts = ResponseStore(root).records()  # before the tests below add to the store
    yield {"root": root, "cards": cards, "requests": requests, "records": records, "stats": stats, "runner": runner,
           "attempts": attempts}  # fmt: skip
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
            answer = answer_text("fault-model", req.messages[-1][1], body)
            if "[fault:echo200]" in req.messages[-1][1]:
                answer += " (your key is [REDACTED])"  # the key the server echoed is not stored
            assert rec["text"] == answer
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


def test_odd_answers_are_stored_as_errors_with_their_raw_body(fault_run):
    records = ResponseStore(fault_run["root"]).records()
    for kind, text in ODD.items():
        first = next(r for r in records if r["request"]["messages"][-1]["content"] == text)
        assert first["status"] == "error" and first["final"] is False and first["text"] is None, kind
        assert first["error"]["type"] == "malformed_response" and first["error"]["status_code"] is None, kind
        assert RAW_BODY_HOLDS[kind] in first["error"]["raw_body"], (kind, first["error"]["raw_body"])
    surrogate = [r for r in records if "surrogate*inf" in r["request"]["messages"][-1]["content"]]
    assert [r["final"] for r in surrogate] == [False, False, False, True]
    assert surrogate[-1]["error"]["message"] == (
        "choices[0].message.content is not valid Unicode (a lone surrogate at character 9)"
    )
    # the shard is valid UTF-8 JSON throughout: nothing unencodable reached the file
    for line in (fault_run["root"] / "fault-chat.jsonl").read_bytes().splitlines():
        json.loads(line.decode("utf-8"))


def test_a_dripping_answer_is_cut_at_the_total_deadline(fault_run):
    recs = [
        r
        for r in ResponseStore(fault_run["root"]).records()
        if r["request"]["messages"][-1]["content"].startswith("[fault:drip]")
    ]
    assert recs[0]["error"]["type"] == "timeout"
    assert (
        recs[0]["error"]["message"] == f"no complete answer within {TIMEOUT_S:g} s (the total deadline of one attempt)"
    )
    # every read succeeds within the timeout; only a deadline on the whole attempt stops it
    assert TIMEOUT_S * 0.9 <= recs[0]["latency_s"] < TIMEOUT_S + 0.5


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
    # the misses, and the requests whose final error cost nothing (HTTP errors): asked again by default; the
    # request given up after maybe-paid attempts (a malformed 200 every time) is not asked again
    assert stats["received"] == {
        "a new question": 1,
        "[fault:500] a new failing question": 2,
        "[fault:401echo] bad key": 1,
        "[fault:500*inf] always failing": LIMITS.max_retries + 1,
    }
    assert runner.report.hits == len(PLAN) - 2 and runner.report.calls == 2


def test_a_request_given_up_after_paid_attempts_is_asked_again_only_with_retry_failed(
    fault_run, server: FaultServer, monkeypatch
):
    monkeypatch.setenv("VALUELEX_TEST_KEY", "sk-test-fault-run-0000")
    given_up = "[fault:surrogate*inf] always a lone surrogate"
    for _ in range(2):  # restarts respect the give-up: not one call
        server.reset()
        runner = LLMRunner(fault_run["cards"], ResponseStore(fault_run["root"]), mode="live", limits=LIMITS)
        plan = runner.plan(fault_run["requests"])
        with pytest.raises(AllCallsFailed):  # only the requests whose errors cost nothing are asked, and fail
            runner.run(fault_run["requests"])
        assert given_up not in server.stats()["received"] and plan.given_up == 1
    server.reset()
    store = ResponseStore(fault_run["root"])
    runner = LLMRunner(fault_run["cards"], store, mode="live", limits=LIMITS, progress=False, retry="failed")
    assert runner.plan(fault_run["requests"]).given_up == 0
    with pytest.raises(AllCallsFailed):
        runner.run(fault_run["requests"])
    assert server.stats()["received"][given_up] == LIMITS.max_retries + 1
    # the attempts of the second try go on from the first's numbers
    attempts = [r["attempt"] for r in store.records() if r["request"]["messages"][-1]["content"] == given_up]
    assert attempts == list(range(1, 2 * (LIMITS.max_retries + 1) + 1))
    # asked alone, every failure is a maybe-paid give-up: nothing is said to be asked again for free
    alone = [r for r in fault_run["requests"] if r.messages[-1][1] == given_up]
    runner = LLMRunner(fault_run["cards"], store, mode="live", limits=LIMITS, progress=False, retry="failed")
    with pytest.raises(AllCallsFailed) as failed:
        runner.run(alone)
    assert "cost nothing" not in str(failed.value) and "asked again only with --retry-failed" in str(failed.value)


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


def _messages(store: ResponseStore) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for rec in store.records():
        out[rec["request"]["messages"][-1]["content"]].append(rec)
    return out


def test_a_validator_that_raises_fails_only_its_own_request(
    server: FaultServer, cards_dir: Path, tmp_path, monkeypatch
):
    """An unexpected exception is stored as that request's own error, with its raw body; the others go on."""
    monkeypatch.setenv("VALUELEX_TEST_KEY", "sk-test-validator-0000")
    server.reset()

    def validator(text: str | None) -> bool:
        if "patience" in (text or ""):
            raise RuntimeError("validator bug")
        return bool(text)

    texts = [f"question {i}" for i in range(30)]
    requests = make_requests("fault-chat", texts)
    store = ResponseStore(tmp_path)
    runner = LLMRunner(
        load_model_cards(cards_dir), store, mode="live", limits=LIMITS, validator=validator, progress=False
    )
    records = runner.run(requests)
    bad = [r for r in records if r["status"] == "error"]
    good = [r for r in records if r["status"] == "ok"]
    assert bad and good and len(bad) + len(good) == len(texts)  # some answers name patience, some do not
    for rec in bad:
        assert rec["error"]["type"] == "internal_error" and rec["attempt"] == 1 and rec["final"]
        assert rec["error"]["message"] == "RuntimeError: validator bug"
        assert "patience" in rec["error"]["raw_body"] and rec["usage"]["completion_tokens"] > 0  # paid: kept
    assert all(r["usable"] and "patience" not in r["text"] for r in good)
    assert server.stats()["total"] == len(texts)  # each asked once: an internal error is not retried
    assert all(len(v) == 1 for v in _messages(store).values())


def test_a_request_that_cannot_be_built_is_its_own_error_and_is_never_sent(server, cards_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("VALUELEX_TEST_KEY", "sk-test-template-0000")
    server.reset()
    cards = dict(load_model_cards(cards_dir).items())
    cards["fault-text"] = replace(cards["fault-text"], prompt_template="{system} {usr}")  # not through the loader
    requests = make_requests("fault-text", ["one"]) + make_requests("fault-chat", ["two"])
    records = LLMRunner(cards, ResponseStore(tmp_path), mode="live", limits=LIMITS, progress=False).run(requests)
    assert records[0]["status"] == "error" and records[0]["attempt"] == 1 and records[0]["final"]
    assert records[0]["error"]["type"] == "internal_error" and records[0]["error"]["message"] == "KeyError: 'usr'"
    assert records[1]["status"] == "ok"
    assert server.stats()["received"] == {"two": 1}


def test_a_long_retry_after_is_capped_and_announced(server, cards_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VALUELEX_TEST_KEY", "sk-test-retry-0000")
    server.reset()
    limits = replace(LIMITS, max_retry_after_s=0.5)
    started = time.monotonic()
    runner = LLMRunner(load_model_cards(cards_dir), ResponseStore(tmp_path), mode="live", limits=limits, progress=False)
    (rec,) = runner.run(make_requests("fault-chat", ["[fault:429long] come back tomorrow"]))
    assert time.monotonic() - started < 5
    assert rec["status"] == "ok" and rec["attempt"] == 2
    arrivals = server.stats()["arrivals"]["[fault:429long] come back tomorrow"]
    assert 0.5 <= arrivals[1] - arrivals[0] < 3
    err = capsys.readouterr().err
    assert (
        "fault-chat: the server asked to wait 100000 s before retrying (Retry-After), "
        "capped to 0.5 s (Limits.max_retry_after_s)"
    ) in err


def test_a_live_run_in_which_every_call_failed_raises(server, cards_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("VALUELEX_TEST_KEY", "sk-test-all-fail-0000")
    server.reset()
    runner = LLMRunner(load_model_cards(cards_dir), ResponseStore(tmp_path), mode="live", limits=LIMITS, progress=False)
    with pytest.raises(AllCallsFailed) as err:
        runner.run(make_requests("fault-chat", [f"[fault:401echo] wrong key {i}" for i in range(3)]))
    assert str(err.value) == (
        "every one of the 3 requests of this live run failed (http_401 x3; e.g. 'Error code: 401 - Incorrect API "
        "key provided: [REDACTED]. You can find your API key at https://example.invalid/keys.'). "
        f"Each attempt is stored in {tmp_path}; fix the cause (key, base_url, model id) and run again: the next "
        "live run asks again the 3 that cost nothing."
    )
    assert ResponseStore(tmp_path).stats.final == 3  # the failures are on record


def test_a_key_with_a_line_break_is_refused_before_any_call(server, cards_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("VALUELEX_TEST_KEY", "sk-test-newline-0000\n")
    server.reset()
    runner = LLMRunner(load_model_cards(cards_dir), ResponseStore(tmp_path), mode="live", limits=LIMITS, progress=False)
    with pytest.raises(MissingKeyError) as err:
        runner.run(make_requests("fault-chat", ["hello"]))
    assert "environment variable VALUELEX_TEST_KEY holds spaces, a line break or control characters" in str(err.value)
    assert "sk-test-newline" not in str(err.value)
    assert server.stats()["total"] == 0 and not any(tmp_path.iterdir())


class _FailingStore(ResponseStore):
    """A store whose disk fills up after a few writes (the one failure that must stop a run)."""

    def __init__(self, root: Path, writes: int):
        super().__init__(root)
        self.writes_left = writes

    def append(self, record: dict) -> None:
        if self.writes_left == 0:
            raise OSError(28, "No space left on device")
        self.writes_left -= 1
        super().append(record)


def test_a_store_that_cannot_be_written_stops_the_run_without_false_records(server, cards_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("VALUELEX_TEST_KEY", "sk-test-disk-full-0000")
    server.reset()
    store = _FailingStore(tmp_path, writes=5)
    limits = replace(LIMITS, concurrency=8)
    runner = LLMRunner(load_model_cards(cards_dir), store, mode="live", limits=limits, progress=False)
    started = time.monotonic()
    with pytest.raises(OSError, match="No space left on device"):
        runner.run(make_requests("fault-chat", [f"question {i}" for i in range(40)]))
    assert time.monotonic() - started < 5
    written = ResponseStore(tmp_path)
    assert written.stats.records + written.stats.sent == 5 and not written.stats.issues  # intents and answers
    assert all(r["status"] == "ok" for r in written.records())  # no "client closed" or timeout records
    time.sleep(0.3)
    sent = server.stats()["total"]
    time.sleep(0.5)
    assert server.stats()["total"] == sent  # nothing is still being asked after the run stopped


def test_the_command_line_exits_1_when_every_call_failed(server, cards_dir, tmp_path):
    (tmp_path / "messages.json").write_text(json.dumps([["fault-chat", "[fault:401echo] wrong key"]]))
    env = {**os.environ, "VALUELEX_TEST_KEY": "sk-test-cli-all-fail", "PYTHONPATH": str(paths.ROOT)}
    script = Path(__file__).with_name("llm_live_run.py")
    args = ["--cards", str(cards_dir), "--messages", str(tmp_path / "messages.json"), "--store", str(tmp_path / "s")]
    run = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert (
        run.stderr.strip()
        .splitlines()[-1]
        .startswith("error: every one of the 1 requests of this live run failed (http_401 x1; ")
    )
    assert "sk-test-cli-all-fail" not in run.stdout + run.stderr


def test_the_report_counts_what_the_run_did(fault_run):
    report = fault_run["runner"].report
    attempts = [a for plan in PLAN.values() for a in plan]
    oks = [rec for rec in fault_run["attempts"] if rec["status"] == "ok"]
    assert (report.requested, report.hits, report.sent) == (len(PLAN), 0, len(PLAN))
    assert report.calls == sum(status == "ok" for status, _ in attempts) == len(oks)
    assert report.failed_attempts == sum(status == "error" for status, _ in attempts)
    final_errors = [plan[-1][1] for plan in PLAN.values() if plan[-1][0] == "error"]
    assert report.failed == len(final_errors) and dict(report.errors) == dict(Counter(final_errors))
    assert report.unusable_final == len(final_errors) + sum(plan[-1] == ("ok", False) for plan in PLAN.values())
    usage = report.per_model["fault-chat"]
    assert usage["calls"] == len(oks)
    assert usage["prompt_tokens"] == sum(r["usage"]["prompt_tokens"] for r in oks)
    assert usage["completion_tokens"] == sum(r["usage"]["completion_tokens"] for r in oks)
    assert usage["cost_usd"] == pytest.approx(sum(r["cost_usd"] for r in oks))
    for rec in fault_run["attempts"]:
        assert rec["latency_s"] == round(rec["latency_s"], 4) and rec["latency_s"] >= 0
        assert rec["timestamp"][-6:] == "+00:00" and len(rec["timestamp"]) == len("2026-01-01T00:00:00.000+00:00")


def test_a_store_loaded_before_another_run_is_reloaded_before_calling(server, cards_dir, tmp_path, monkeypatch):
    """Two runs one after the other, the second holding a store read before the first ran: nothing is paid twice."""
    monkeypatch.setenv("VALUELEX_TEST_KEY", "sk-test-stale-0000")
    server.reset()
    cards = load_model_cards(cards_dir)
    requests = make_requests("fault-chat", [f"question {i}" for i in range(5)])
    stale = ResponseStore(tmp_path)  # read while the store is still empty
    LLMRunner(cards, ResponseStore(tmp_path), mode="live", limits=LIMITS, progress=False).run(requests)
    second = LLMRunner(cards, stale, mode="live", limits=LIMITS, progress=False)
    records = second.run(requests)
    assert all(r["status"] == "ok" for r in records) and second.report.calls == 0 and second.report.sent == 0
    assert server.stats()["received"] == {f"question {i}": 1 for i in range(5)}


def test_an_endpoint_given_to_the_runner_wins_over_the_card(server, cards_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("VALUELEX_TEST_KEY", "sk-test-endpoint-0000")
    server.reset()
    cards = dict(load_model_cards(cards_dir).items())
    cards["fault-chat"] = replace(cards["fault-chat"], base_url="http://127.0.0.1:9/v1")  # nothing listens there
    runner = LLMRunner(
        cards, ResponseStore(tmp_path), mode="live", limits=LIMITS, endpoints={"fault-chat": server.base_url}
    )
    (rec,) = runner.run(make_requests("fault-chat", ["through the given endpoint"]))
    assert rec["status"] == "ok" and server.stats()["received"] == {"through the given endpoint": 1}


def test_a_cards_concurrency_limit_is_kept(cards_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("VALUELEX_TEST_KEY", "sk-test-conc-0000")
    with FaultServer(latency_ms=300) as slow:
        write_card(tmp_path / "cards", "fault-two", slow.base_url, concurrency=2)
        runner = LLMRunner(
            load_model_cards(tmp_path / "cards"), ResponseStore(tmp_path / "s"), mode="live", limits=LIMITS
        )
        started = time.monotonic()
        runner.run(make_requests("fault-two", [f"q{i}" for i in range(6)]))
        elapsed = time.monotonic() - started
        arrivals = sorted(t for ts in slow.stats()["arrivals"].values() for t in ts)
    assert elapsed >= 3 * 0.3  # three rounds of two
    first = arrivals[0]
    assert sum(t < first + 0.25 for t in arrivals) <= 2  # never more than two at once


def test_servers_of_one_local_model_each_answer_a_contiguous_share_in_order(tmp_path, monkeypatch):
    """Several servers of one llama.cpp model (``LlamaServerPool``): each gets a contiguous share of the
    requests, in request order, one at a time, so what a server evaluated before a request (its cached
    prompt prefix) does not depend on timing."""
    monkeypatch.setenv("VALUELEX_TEST_KEY", "sk-test-pool-0000")
    with FaultServer(latency_ms=50) as a, FaultServer(latency_ms=50) as b:
        write_card(tmp_path / "cards", "fault-pool", a.base_url)
        card = replace(load_model_cards(tmp_path / "cards")["fault-pool"], provider="llama_cpp")
        runner = LLMRunner(
            {"fault-pool": card},
            ResponseStore(tmp_path / "s"),
            mode="live",
            limits=LIMITS,
            endpoints={"fault-pool": [a.base_url, b.base_url]},
            progress=False,
        )
        texts = [f"question {i}" for i in range(7)]
        records = runner.run(make_requests("fault-pool", texts))
        seen = [a.stats()["arrivals"], b.stats()["arrivals"]]
    assert [r["status"] for r in records] == ["ok"] * 7 and [r["request"]["prompt_id"] for r in records] == [
        f"q{i}" for i in range(7)
    ]
    assert [sorted(s, key=s.get) for s in seen] == [texts[:4], texts[4:]]  # contiguous shares, each in order
    for arrivals in seen:  # one request at a time: each arrives after the one before it was answered (50 ms)
        times = sorted(t for ts in arrivals.values() for t in ts)
        assert all(len(ts) == 1 for ts in arrivals.values()) and all(
            t2 - t1 >= 0.049 for t1, t2 in zip(times, times[1:], strict=False)
        )


def test_a_partial_failure_is_announced(server, cards_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VALUELEX_TEST_KEY", "sk-test-partial-0000")
    server.reset()
    runner = LLMRunner(load_model_cards(cards_dir), ResponseStore(tmp_path), mode="live", limits=LIMITS, progress=False)
    runner.run(make_requests("fault-chat", ["fine", "[fault:401echo] refused", "[fault:500*inf] broken"]))
    assert capsys.readouterr().err.splitlines()[-1] == (
        "2 of 3 requests ended in an error (http_401 x1, http_500 x1); they are stored, and the next live run "
        "asks again the 2 that cost nothing"
    )


def test_progress_is_shown_only_when_asked(server, cards_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VALUELEX_TEST_KEY", "sk-test-progress-0000")
    cards = load_model_cards(cards_dir)
    LLMRunner(cards, ResponseStore(tmp_path / "a"), mode="live", limits=LIMITS, progress=False).run(
        make_requests("fault-chat", ["quiet question"])
    )
    assert capsys.readouterr().err == ""
    LLMRunner(cards, ResponseStore(tmp_path / "b"), mode="live", limits=LIMITS, progress=True).run(
        make_requests("fault-chat", ["loud question 1", "loud question 2"])
    )
    err = capsys.readouterr().err
    assert "LLM calls: 100%" in err and "2/2" in err and "call/s" in err


# issue 19: what is held back, what a refused connection is, and a run without one usable answer ---------------
def test_a_request_whose_only_record_is_damaged_is_not_paid_again(server, cards_dir, tmp_path, monkeypatch, capsys):
    """Damaged in place (a byte changed, a key edited): reported with file and line, not asked again, and
    named as damaged or mis-keyed, not as missing; --retry-damaged (retry="damaged") asks them."""
    monkeypatch.setenv("VALUELEX_TEST_KEY", "sk-test-damaged-0000")
    cards = load_model_cards(cards_dir)
    requests = make_requests("fault-chat", ["kept", "a byte changed", "a key edited"])
    LLMRunner(cards, ResponseStore(tmp_path), mode="live", limits=LIMITS, progress=False).run(requests)
    shard = tmp_path / "fault-chat.jsonl"
    lines = shard.read_bytes().split(b"\n")
    answers = {
        json.loads(line)["request"]["messages"][-1]["content"]: i for i, line in enumerate(lines) if b'"ok"' in line
    }
    byte = lines[answers["a byte changed"]].index(b"ok-")
    lines[answers["a byte changed"]] = (
        lines[answers["a byte changed"]][:byte] + b"\xff" + lines[answers["a byte changed"]][byte + 1 :]
    )
    edited = json.loads(lines[answers["a key edited"]])
    lines[answers["a key edited"]] = lines[answers["a key edited"]].replace(edited["key"].encode(), b"f" * 32)
    shard.write_bytes(b"\n".join(lines))
    server.reset()
    capsys.readouterr()
    store = ResponseStore(tmp_path)
    err = capsys.readouterr().err
    assert f"{shard}:{answers['a byte changed'] + 1}: not UTF-8 text" in err
    assert f"{shard}:{answers['a key edited'] + 1}: field 'key' does not match the hash of 'request'" in err
    runner = LLMRunner(cards, store, mode="live", limits=LIMITS, progress=False)
    plan = runner.plan(requests)
    assert (plan.stored, plan.to_call, plan.damaged) == (1, 0, 2)
    with pytest.raises(UnansweredRequests) as held:
        runner.run(requests)
    assert server.stats()["total"] == 0  # nothing paid again
    message = str(held.value)
    assert message.startswith(f"2 of 3 requests were not asked and have no answer in the store {tmp_path}")
    assert (
        f"{requests[1].describe()}: its only record is damaged ({shard}:{answers['a byte changed'] + 1}: not UTF-8"
        in message
    )
    assert (
        f"{requests[2].describe()}: its only record is damaged ({shard}:{answers['a key edited'] + 1}: field 'key' does not match"
        in message
    )
    assert message.endswith("run again with --retry-damaged to do so (or VALUELEX_RETRY=damaged).")
    again = LLMRunner(cards, ResponseStore(tmp_path), mode="live", limits=LIMITS, progress=False, retry="damaged")
    records = again.run(requests)
    assert server.stats()["received"] == {"a byte changed": 1, "a key edited": 1}
    assert [r["status"] for r in records] == ["ok"] * 3


def test_a_refused_connection_is_stored_as_refused(cards_dir, tmp_path, monkeypatch):
    """No server on the port: each attempt fails at once and is stored as connection_refused, not as a timeout."""
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    folder = tmp_path / "cards"
    write_card(folder, "fault-closed", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("VALUELEX_TEST_KEY", "sk-test-refused-0000")
    limits = replace(LIMITS, timeout_s=30.0, max_retries=1)
    runner = LLMRunner(load_model_cards(folder), ResponseStore(tmp_path / "store"), mode="live", limits=limits)
    with pytest.raises(AllCallsFailed) as err:
        runner.run(make_requests("fault-closed", ["anyone there?"]))
    assert "connection_refused x1" in str(err.value) and "timeout" not in str(err.value)
    records = ResponseStore(tmp_path / "store").records()
    assert [r["error"]["type"] for r in records] == ["connection_refused"] * 2
    assert all(r["error"]["message"].startswith("connection refused (") for r in records)
    assert all(r["latency_s"] < 5 for r in records)  # at once, not after the 30 s deadline
    # nothing was paid: the next live run asks it again (a server that was down costs nothing to retry)
    assert runner.state(records[0]["key"]) == "failed" and runner.misses(
        make_requests("fault-closed", ["anyone there?"])
    )


def test_a_run_without_one_usable_answer_fails(server, cards_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("VALUELEX_TEST_KEY", "sk-test-all-empty-0000")
    cards = load_model_cards(cards_dir)
    requests = make_requests("fault-chat", [f"[fault:empty*inf] silent {i}" for i in range(3)])
    for mode in ("live", "replay"):  # the same answer when the stored answers are replayed
        runner = LLMRunner(cards, ResponseStore(tmp_path), mode=mode, limits=LIMITS, progress=False)
        with pytest.raises(NoUsableAnswers) as err:
            runner.run(requests)
        assert str(err.value) == (
            "not one of the 3 requests has a usable answer (empty x3); check the model, its prompt template and "
            f"max_tokens (the answers are in {tmp_path})"
        )
    assert len(ResponseStore(tmp_path).final_records()) == 3  # stored all the same


def test_the_command_line_exits_1_when_no_answer_is_usable(server, cards_dir, tmp_path):
    (tmp_path / "m.json").write_text(json.dumps([["fault-chat", "[fault:empty*inf] nothing"]]))
    run = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("llm_live_run.py")), "--cards", str(cards_dir)]
        + ["--messages", str(tmp_path / "m.json"), "--store", str(tmp_path / "store")],
        capture_output=True, text=True, cwd=paths.ROOT, timeout=120,
        env={**os.environ, "VALUELEX_TEST_KEY": "sk-test-cli-empty-0000", "PYTHONPATH": str(paths.ROOT)},
    )  # fmt: skip
    assert run.returncode == 1, run.stderr
    assert (
        run.stderr.strip()
        .splitlines()[-1]
        .startswith("error: not one of the 1 requests has a usable answer (empty x1)")
    )


def test_a_folder_where_a_shard_belongs_stops_a_live_run_before_any_call(server, cards_dir, tmp_path, monkeypatch):
    """A folder named like a model's shard: one line naming it (a UserError), no call sent, no traceback."""
    monkeypatch.setenv("VALUELEX_TEST_KEY", "sk-test-folder-0000")
    server.reset()
    (tmp_path / "fault-chat.jsonl").mkdir()
    runner = LLMRunner(load_model_cards(cards_dir), ResponseStore(tmp_path), mode="live", limits=LIMITS, progress=False)
    with pytest.raises(StoreUnwritable) as err:
        runner.run(make_requests("fault-chat", ["anyone there?", "and here?"]))
    assert str(err.value) == (
        f"{tmp_path / 'fault-chat.jsonl'} is a folder, not a store shard: move it away "
        "(model 'fault-chat' writes its records there)"
    )
    assert isinstance(err.value, UserError) and server.stats()["total"] == 0


def test_a_batch_holding_damaged_and_lost_requests_names_both_retry_choices(server, cards_dir, tmp_path, monkeypatch):
    """Two kinds held back in one batch: the hint names both flags and the VALUELEX_RETRY value for both."""
    monkeypatch.setenv("VALUELEX_TEST_KEY", "sk-test-fault-run-0000")
    server.reset()
    cards = load_model_cards(cards_dir)
    requests = make_requests("fault-chat", ["kept", "a byte changed", "killed in flight"])
    LLMRunner(cards, ResponseStore(tmp_path), mode="live", limits=LIMITS, progress=False).run(requests[:2])
    shard = tmp_path / "fault-chat.jsonl"
    lines = shard.read_bytes().split(b"\n")
    damaged = next(i for i, line in enumerate(lines) if b'"ok"' in line and b"a byte changed" in line)
    lines[damaged] = lines[damaged].replace(b'"ok"', b'"\xff"', 1)
    shard.write_bytes(b"\n".join(lines))
    store = ResponseStore(tmp_path)
    card = cards["fault-chat"]
    store.append({"key": requests[2].key(card), "request": requests[2].canonical(card), "attempt": 1,
                  "status": "sent", "final": False, "timestamp": "2026-01-01T00:00:00"})  # fmt: skip
    server.reset()
    with pytest.raises(UnansweredRequests) as held:
        LLMRunner(cards, ResponseStore(tmp_path), mode="live", limits=LIMITS, progress=False).run(requests)
    assert server.stats()["total"] == 0
    assert str(held.value).endswith(
        "run again with --retry-damaged and --retry-lost to do so (or VALUELEX_RETRY=damaged,lost)."
    )
