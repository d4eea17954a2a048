"""SIGKILL a live run mid-way, twice, then let it finish: nothing lost, nothing duplicated, nothing re-paid.

The run is a separate process (``tests/llm_live_run.py``) calling our fault server over
loopback with 150 ms of latency; the server's per-message counters show what was sent. Calls in
flight at a kill left a *sent* intent and no outcome in the store: the resume names them and does
not send them again; only ``VALUELEX_RETRY=lost`` (``--retry-lost``) does.
"""

from __future__ import annotations

import fcntl
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
from valuelex.core.paths import ROOT
from valuelex.llm.store import ResponseStore

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


def complete_lines(shard: Path) -> list[bytes]:
    """The complete lines of a shard a live run is writing: read under a shared lock (as the store's
    loader does), so no line is seen half written, and without a last line that has no newline yet."""
    if not shard.exists():
        return []
    with open(shard, "rb") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_SH)
        data = fh.read()
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    return [line for line in data.split(b"\n")[:-1] if line.strip()]


def finals_in(shard: Path) -> Counter:
    """Final records per key, straight from the file (not through the loader's dedup)."""
    counts: Counter = Counter()
    for line in complete_lines(shard):
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

        # the resume asks everything except the calls lost in flight, names those, and stops (exit 2)
        lost = _lost_requests(ResponseStore(store_dir, announce=False))
        resume = start_run(args, env, log)
        assert resume.wait(60) == (2 if lost else 0), log.read_text()[-3000:]
        resumed = server.stats()
        for text in lost:  # not sent again: at most what a run that was never killed sends
            assert resumed["received"].get(text, 0) <= EXPECTED_ARRIVALS(text), text
        assert all(n <= EXPECTED_ARRIVALS(text) for text, n in resumed["received"].items())
        if lost:
            tail = log.read_text().split(f"error: {len(lost)} of {N} requests were not asked and have no answer")[-1]
            assert "sent by a run killed before its answer was stored" in tail and "Traceback" not in tail
            assert (
                tail.strip().splitlines()[-1].endswith("run again with --retry-lost to do so (or VALUELEX_RETRY=lost).")
            )

        # on the explicit choice they are sent again, and the run completes
        final = start_run(args, {**env, "VALUELEX_RETRY": "lost"}, log)
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
    assert not _lost_requests(store)
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
    # the only calls sent twice are the ones lost in flight at a kill (at most CONCURRENCY per kill), and only
    # because the last run was told to send them again; every other request got exactly its planned arrivals
    assert len(lost) <= 2 * CONCURRENCY
    for text in texts:
        assert EXPECTED_ARRIVALS(text) <= end["received"][text] <= EXPECTED_ARRIVALS(text) + (text in lost), text


def EXPECTED_ARRIVALS(text: str) -> int:  # noqa: N802 - a table, as a function
    """Calls a run that is never killed sends for a message: a 500 is retried once, an empty answer re-asked once."""
    return 2 if "[fault:" in text else 1


def _lost_requests(store: ResponseStore) -> set[str]:
    """The messages of the requests whose call was sent (an intent is stored) without a stored outcome or answer."""
    out = set()
    for line in complete_lines(store.root / "fault-chat.jsonl"):
        rec = json.loads(line)
        if store.get(rec["key"]) is None and store.lost(rec["key"]):
            out.add(rec["request"]["messages"][-1]["content"])
    return out


def test_two_live_runs_on_one_store_never_pay_twice(tmp_path: Path):
    """A run that finds the store held stops at once, naming the holder; started together, each call is paid once."""
    cards, store_dir, log = tmp_path / "cards", tmp_path / "store", tmp_path / "run.log"
    texts = [f"question {i}" for i in range(20)]
    (tmp_path / "messages.json").write_text(json.dumps([["fault-chat", t] for t in texts]))
    env = {**os.environ, "VALUELEX_TEST_KEY": "sk-test-two-runs", "PYTHONPATH": str(ROOT)}
    with FaultServer(latency_ms=100) as server:
        write_card(cards, "fault-chat", server.base_url)
        args = ["--cards", str(cards), "--messages", str(tmp_path / "messages.json"), "--store", str(store_dir)]
        args += ["--concurrency", "2"]

        # another live run holds the store (here: this test process): the run is refused, names it, asks nothing
        with ResponseStore(store_dir).run_lock():
            holder = (store_dir / ".run.lock").read_text()
            refused = subprocess.run(
                [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120
            )
        assert refused.returncode == 2, refused.stderr
        assert holder.startswith(f"pid {os.getpid()} on ")
        assert refused.stderr.strip().splitlines()[-1] == (
            f"error: the response store {store_dir} is in use by another live run ({holder}); "
            "let it finish or stop it, then run again"
        )
        assert "Traceback" not in refused.stderr and server.stats()["total"] == 0

        # two runs started at the same moment: one runs, the other is refused or finds nothing left to ask
        runs = [start_run(args, env, log) for _ in range(2)]
        codes = sorted(run.wait(120) for run in runs)
        assert codes in ([0, 0], [0, 2]), log.read_text()[-3000:]
        assert server.stats()["received"] == {t: 1 for t in texts}
    store = ResponseStore(store_dir)
    assert store.stats.final == 20 and store.stats.duplicate_finals == 0 and not store.stats.issues
