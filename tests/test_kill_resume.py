"""SIGKILL a live run mid-way, twice, then let it finish: nothing lost, nothing duplicated, nothing re-paid.

The run is a separate process (``tests/llm_live_run.py``) calling our fault server over
loopback with 150 ms of latency; the server's per-message counters show what was sent.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.fault_server import FaultServer, answer_text, write_card
from valuelex.paths import ROOT
from valuelex.store import ResponseStore

SCRIPT = Path(__file__).with_name("llm_live_run.py")
N = 60
CONCURRENCY = 4


def messages() -> list[str]:
    out = []
    for i in range(N):
        if i % 10 == 3:
            out.append(f"[fault:500] question {i}")
        elif i % 10 == 7:
            out.append(f"[fault:empty] question {i}")
        else:
            out.append(f"question {i}")
    return out


def finals_in(shard: Path) -> Counter:
    """Final records per key, straight from the file (not through the loader's dedup)."""
    counts: Counter = Counter()
    if shard.exists():
        for line in shard.read_text(encoding="utf-8").splitlines():
            if line.strip():
                rec = json.loads(line)
                counts[rec["key"]] += rec["final"]
    return counts


def start_run(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    out = open(log, "ab")
    try:
        return subprocess.Popen([sys.executable, str(SCRIPT), *args], stdout=out, stderr=out, env=env, cwd=ROOT)
    finally:
        out.close()


def kill_after(proc: subprocess.Popen, shard: Path, finals: int, timeout_s: float = 60.0) -> int:
    """SIGKILL the run as soon as the store holds ``finals`` final records; returns how many it held."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done = sum(finals_in(shard).values())
        if done >= finals:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
            return done
        if proc.poll() is not None:
            pytest.fail(f"the run ended (code {proc.returncode}) before it could be killed at {finals} records")
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"the run did not reach {finals} records in {timeout_s} s")


def test_sigkill_and_resume_loses_and_duplicates_nothing(tmp_path: Path):
    cards, store_dir, log = tmp_path / "cards", tmp_path / "store", tmp_path / "run.log"
    texts = messages()
    (tmp_path / "messages.json").write_text(json.dumps([["fault-chat", t] for t in texts]))
    env = {**os.environ, "VALUELEX_TEST_KEY": "sk-test-kill-resume", "PYTHONPATH": str(ROOT)}
    with FaultServer(latency_ms=150) as server:
        write_card(cards, "fault-chat", server.base_url)
        args = ["--cards", str(cards), "--messages", str(tmp_path / "messages.json"), "--store", str(store_dir)]
        args += ["--concurrency", str(CONCURRENCY)]
        shard = store_dir / "fault-chat.jsonl"

        snapshots = []
        for kill_at in (15, 35):
            proc = start_run(args, env, log)
            held = kill_after(proc, shard, kill_at)
            assert proc.returncode == -signal.SIGKILL
            assert held < N, "the run finished before the kill"
            snapshots.append((ResponseStore(store_dir), server.stats()))

        final = start_run(args, env, log)
        assert final.wait(60) == 0, log.read_text()[-3000:]
        end = server.stats()

        # once more: everything is stored, so nothing is sent
        again = start_run(args, env, log)
        assert again.wait(60) == 0
        assert server.stats()["total"] == end["total"]

    output = log.read_text()
    assert f"{N} requests: {N} already stored, 0 to call" in output

    # every request has exactly one final record, and the store is clean
    store = ResponseStore(store_dir)
    assert not store.stats.issues and store.stats.duplicate_finals == 0
    counts = finals_in(shard)
    assert len(counts) == N and set(counts.values()) == {1}
    by_text = {r["request"]["messages"][-1]["content"]: r for r in store.final_records()}
    assert set(by_text) == set(texts)
    for text, rec in by_text.items():
        assert rec["status"] == "ok" and rec["usable"], text
        assert rec["text"] == answer_text("fault-model", text, {"temperature": 0.7, "top_p": 1.0, "seed": None})

    # a request completed before a kill was never sent again
    for partial, stats in snapshots:
        done = {r["request"]["messages"][-1]["content"] for r in partial.final_records()}
        assert 0 < len(done) < N
        for text in done:
            assert end["received"][text] == stats["received"][text], f"{text!r} was asked again after it completed"
    # the only calls paid twice are the ones in flight at a kill: at most CONCURRENCY per kill
    answered = sum(end["ok"].values())
    expected = N + sum("[fault:empty]" in t for t in texts)  # an empty answer is re-asked once, by design
    assert expected <= answered <= expected + 2 * CONCURRENCY
