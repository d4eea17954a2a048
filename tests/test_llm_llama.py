"""The real llama.cpp server with SmolLM2-135M, through the same client code path as any API.

Skipped (with the reason) when llama-cpp-python or the GGUF file is missing, except in CI
(``CI`` set), where that is a failure: ``./run_tests.sh`` installs both.
"""

from __future__ import annotations

import importlib.util
import os
import urllib.request
from pathlib import Path

import pytest

from valuelex.llm import local
from valuelex.llm.cards import load_model_cards
from valuelex.llm.limits import Limits
from valuelex.llm.local import LlamaServer, gguf_path
from valuelex.llm.request import Request
from valuelex.llm.runner import LLMRunner
from valuelex.llm.store import ResponseStore

pytestmark = pytest.mark.llama
CARD_NAME = "smollm2-135m-instruct"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PROMPTS = ["Name one value that matters to you.", "Say hello in one word.", "What is 2 + 2?"]


@pytest.fixture(scope="module")
def card():
    card = load_model_cards()[CARD_NAME]
    missing = []
    if importlib.util.find_spec("llama_cpp") is None:
        missing.append("llama-cpp-python is not installed")
    if not gguf_path(card).exists():
        missing.append(f"{gguf_path(card)} is missing (./run_all.sh --install-local-models)")
    if missing:
        if IN_CI:
            pytest.fail("; ".join(missing) + " (./run_tests.sh installs them)")
        pytest.skip("; ".join(missing))
    return card


def requests(prompts: list[str] = PROMPTS) -> list[Request]:
    return [
        Request(CARD_NAME, (("user", p),), 0.0, 1.0, 12, seed=11, prompt_id=f"p{i}", prompt_version="test")
        for i, p in enumerate(prompts)
    ]


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/models", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def assert_gone(server: LlamaServer) -> None:
    assert server.proc is not None and server.proc.poll() is not None
    with pytest.raises(ProcessLookupError):
        os.kill(server.proc.pid, 0)
    assert not answers(server.base_url)


def our_llama_children() -> list[int]:
    """Pids of llama.cpp servers that are children of this process (read from /proc)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and (
            b"llama_cpp.server" in cmdline or b"valuelex.llm.llama_server" in cmdline
        ):
            pids.append(int(stat.parent.name))
    return pids


def check_records(records: list[dict], n: int) -> None:
    assert len(records) == n
    for rec in records:
        assert rec["status"] == "ok" and rec["final"] and rec["error"] is None
        assert isinstance(rec["text"], str) and rec["usable"] == bool(rec["text"].strip())
        assert rec["finish_reason"] in ("stop", "length")
        assert rec["usage"]["prompt_tokens"] > 5 and 0 < rec["usage"]["completion_tokens"] <= 12
        assert rec["served_model"] == CARD_NAME and rec["latency_s"] > 0
        assert rec["cost_usd"] == 0.0


def test_server_answers_through_the_runner_and_stops(card, tmp_path: Path):
    server = LlamaServer.for_card(card, log_path=tmp_path / "llama.log")
    with server as url:
        assert answers(url)
        runner = LLMRunner(
            {CARD_NAME: card},
            ResponseStore(tmp_path / "store"),
            mode="live",
            endpoints={CARD_NAME: url},
            progress=False,
        )
        records = runner.run(requests())
    check_records(records, len(PROMPTS))
    assert "What is 2 + 2?" in str(records[2]["request"]["messages"])
    assert runner.report.calls == len(PROMPTS)
    assert runner.report.per_model[CARD_NAME]["completion_tokens"] == sum(
        r["usage"]["completion_tokens"] for r in records
    )
    assert_gone(server)
    # replay afterwards gives the same texts with the server gone
    replay = LLMRunner({CARD_NAME: card}, ResponseStore(tmp_path / "store"), mode="replay", progress=False)
    assert [r["text"] for r in replay.run(requests())] == [r["text"] for r in records]


def test_server_stops_when_the_body_raises(card, tmp_path: Path):
    server = LlamaServer.for_card(card, log_path=tmp_path / "llama.log")
    with pytest.raises(RuntimeError, match="boom"):
        with server as url:
            assert answers(url)
            raise RuntimeError("boom")
    assert_gone(server)


def test_runner_starts_and_stops_its_own_server_pool(card, tmp_path: Path, monkeypatch):
    """Live mode on a llama_cpp card with no endpoint given: the runner runs a pool of servers itself,
    each answering its own contiguous share of the requests (here one each)."""
    monkeypatch.setenv("VALUELEX_LLAMA_SERVERS", "2")
    # the servers' logs in a folder of this test's own: the shared one may hold another test session's calls
    monkeypatch.setattr(local, "DEFAULT_LOG_DIR", tmp_path / "server-logs")
    logs = [local.DEFAULT_LOG_DIR / f"llama_server_{card.model}_{i}.log" for i in range(2)]
    before = [log.stat().st_size if log.exists() else 0 for log in logs]
    runner = LLMRunner(
        {CARD_NAME: card},
        ResponseStore(tmp_path / "store"),
        mode="live",
        limits=Limits(timeout_s=60),
        progress=False,
    )
    records = runner.run(requests(PROMPTS[:2]))
    check_records(records, 2)
    assert our_llama_children() == []
    for log, size in zip(logs, before, strict=True):  # each server it started answered one request
        with open(log, "rb") as fh:
            fh.seek(size)
            assert fh.read().count(b"POST /v1/chat/completions") == 1
