"""The LLM layer through ``valuelex``: what a live run holds back is counted by ``valuelex plan``, asked only
with ``--retry-damaged`` / ``--retry-lost`` / ``--retry-failed``, and a damaged store is reported on the console.

The run's own ``raw:`` store is a copy of the committed dataset in which three requests of SmolLM2 were
changed: one's only record is damaged in place, one has only the *sent* intent of a call whose answer was
never stored (a run killed while it was in flight), and one ended in an error after a malformed 200 (a
give-up: the call may have been paid).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from valuelex.core import paths
from valuelex.llm.store import ResponseStore

SHARD = "smollm2-135m-instruct.jsonl"


def _summary(stdout: str) -> dict[str, str]:
    """The plan's summary block: label -> value."""
    out = {}
    for line in stdout.splitlines():
        label, _, value = line.rpartition("  ")
        if label.strip() and value.strip():
            out[label.strip()] = value.strip()
    return out


@pytest.fixture(scope="module")
def run_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    """A live run whose store holds a damaged, a lost and a given-up request; returns (run file, shard, keys)."""
    tmp = tmp_path_factory.mktemp("cli")
    raw = tmp / "raw"
    shutil.copytree(paths.ROOT / "data" / "raw", raw, ignore=shutil.ignore_patterns(".*"))
    shard = raw / "elicitation" / SHARD
    lines = shard.read_bytes().splitlines(keepends=True)
    records = [json.loads(line) for line in lines]
    once = [k for k, r in enumerate(records) if sum(x["key"] == r["key"] for x in records) == 1 and r["final"]][:3]
    damaged, lost, given_up = once
    keys = [records[k]["key"] for k in once]
    lines[damaged] = lines[damaged][: lines[damaged].index(b'"request"') + 40] + b"\n"  # cut in place, key readable
    intent = {k: records[lost][k] for k in ("schema", "key", "request", "attempt", "timestamp")}
    lines[lost] = (json.dumps({**intent, "status": "sent", "final": False}, sort_keys=True) + "\n").encode()
    error = {"type": "malformed_response", "message": "the body is not JSON", "status_code": None, "raw_body": "{"}
    failed = {**records[given_up], "status": "error", "usable": False, "text": None, "error": error}
    lines[given_up] = (json.dumps(failed, sort_keys=True) + "\n").encode()
    shard.write_bytes(b"".join(lines))
    path = tmp / "held.yaml"
    path.write_text(f"mode: live\noutput: {tmp / 'out'}\nraw: {raw}\nbase: null\n")
    return path, shard, keys


def valuelex(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "VALUELEX_RETRY"}
    command = [sys.executable, "-m", "valuelex.app.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=paths.ROOT, timeout=300)


def test_the_plan_counts_what_a_live_run_holds_back(run_file):
    path, shard, keys = run_file
    store = ResponseStore(shard.parent, announce=False)
    assert store.damaged(keys[0]) and store.lost(keys[1]) and store.get(keys[2])["status"] == "error"
    plan = valuelex("plan", str(path))
    assert plan.returncode == 0, plan.stderr
    summary = _summary(plan.stdout)
    assert summary["to call"] == "0"  # none of the three is asked: each may have been paid already
    assert summary["not asked: damaged records"] == "1"
    assert summary["not asked: lost in flight"] == "1"
    assert summary["stored as given up"] == "1"
    assert summary["asked again only with"] == "--retry-damaged, --retry-lost, --retry-failed"
    assert f"{shard}:" in plan.stderr  # the damaged line, with its file and line, on the console
    for flags, to_call in ((["--retry-damaged"], 1), (["--retry-damaged", "--retry-lost", "--retry-failed"], 3)):
        again = valuelex("plan", str(path), *flags)
        assert again.returncode == 0 and _summary(again.stdout)["to call"] == str(to_call), again.stdout


def test_a_replay_reports_the_damaged_store_on_the_console_and_names_the_request(run_file, tmp_path: Path):
    path, shard, keys = run_file
    replay = tmp_path / "held_replay.yaml"
    replay.write_text(path.read_text().replace("mode: live", "mode: replay"))
    run = valuelex("run", str(replay), "--only", "01")
    assert run.returncode == 2, run.stdout + run.stderr
    err = run.stderr.splitlines()
    damage = next(i for i, line in enumerate(err) if line.startswith(f"response store {shard.parent}: 1 damaged"))
    assert err[damage + 1].startswith(f"  {shard}:") and "not JSON" in err[damage + 1]
    # the notebook's error names both held-back requests and why they have no answer
    error = run.stderr[run.stderr.index("valuelex: 01_elicitation: StoreMiss: replay mode: 2 of 1800 requests") :]
    assert f"its only record is damaged ({shard}:" in error
    assert "sent by a run killed before its answer was stored (attempt 1)" in error
    assert "Traceback" not in run.stderr
