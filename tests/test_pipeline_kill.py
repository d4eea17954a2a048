"""SIGKILL of ``run_all.sh`` or of ``valuelex run`` during a live notebook: nothing of the run keeps paying.

A SIGKILL cannot be caught, so no signal handler can pass it on; each process of the tree must die
with its parent instead (``PR_SET_PDEATHSIG``): ``valuelex`` with ``run_all.sh``, papermill with
``valuelex``, the notebook's kernel with papermill. The notebook here makes a long live run against
our fault server (1,000 requests, 100 ms each, two at a time: about 50 s); the run is killed once a
few answers are stored, and every process of the tree must be gone long before the run could have
finished, the server receiving nothing more.

Each test runs in a scratch copy of the project (as in ``test_run_all.py``) with the shared ``.venv``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.fault_server import FaultServer, write_card
from valuelex.core import paths

ROOT = paths.ROOT
N = 1000
LIVE_NOTEBOOK = """\
import json, os, pathlib
from valuelex import stages
settings = stages.start(run, overrides).settings
live = json.loads(pathlib.Path("../live.json").read_text())
papermill = os.getppid()
valuelex = int(pathlib.Path(f"/proc/{papermill}/stat").read_text().rsplit(")", 1)[1].split()[1])
pids = {"kernel": os.getpid(), "papermill": papermill, "valuelex": valuelex}
pathlib.Path("../pids.json").write_text(json.dumps(pids))

from valuelex.llm.cards import load_model_cards
from valuelex.llm.limits import Limits
from valuelex.llm.request import Request
from valuelex.llm.runner import LLMRunner
from valuelex.llm.store import ResponseStore

requests = [
    Request("fault-chat", (("user", f"question {i}"),), 0.7, 1.0, 16, prompt_id=f"q{i}") for i in range(live["n"])
]
limits = Limits(concurrency=2, timeout_s=30)
runner = LLMRunner(load_model_cards(live["cards"]), ResponseStore(live["store"]), mode="live", limits=limits)
runner.run(requests)
"""


def notebook(*cells: str) -> dict:
    def code(source: str, tags: list[str] | None = None) -> dict:
        meta = {"tags": tags} if tags else {}
        return {"cell_type": "code", "metadata": meta, "source": source, "outputs": [], "execution_count": None}

    parameters = code('run = "default"\noverrides = {}', ["parameters"])
    return {
        "cells": [parameters, *(code(c) for c in cells)],
        "metadata": {"kernelspec": {"name": "valuelex", "display_name": "Python (valuelex)", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A scratch project whose one notebook makes a long live run against the fault server."""
    venv = ROOT / ".venv"
    stamp = venv / ".valuelex-lock"
    want = hashlib.sha256((ROOT / "requirements.lock").read_bytes() + (ROOT / "pyproject.toml").read_bytes())
    if not stamp.exists() or stamp.read_text().strip() != want.hexdigest()[:16]:
        pytest.skip("the .venv is not set up for this checkout's lock file (run ./run_all.sh --setup-only)")
    for name in ("run_all.sh", "requirements.lock", "pyproject.toml"):
        shutil.copy2(ROOT / name, tmp_path / name)
    (tmp_path / ".venv").symlink_to(venv.resolve())
    (tmp_path / "configs").symlink_to(ROOT / "configs")
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "01_live.ipynb").write_text(json.dumps(notebook(LIVE_NOTEBOOK)))
    return tmp_path


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status  # a zombie has exited


def _lines(shard: Path) -> int:
    return shard.read_bytes().count(b"\n") if shard.exists() else 0


@pytest.mark.parametrize("target", ["run_all.sh", "valuelex"])
def test_sigkill_leaves_no_process_paying(project: Path, tmp_path_factory: pytest.TempPathFactory, target: str):
    work = tmp_path_factory.mktemp("live")
    store, pids_file = work / "store", project / "pids.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VALUELEX_")}
    env["VALUELEX_TEST_KEY"] = "sk-test-kill-tree-0000"
    command = ["bash", "run_all.sh", "--only", "01"] if target == "run_all.sh" else [".venv/bin/valuelex", "run"]
    command += [] if target == "run_all.sh" else ["--only", "01"]
    pids: dict[str, int] = {}
    with FaultServer(latency_ms=100) as server:
        write_card(work / "cards", "fault-chat", server.base_url)
        live = {"cards": str(work / "cards"), "store": str(store), "n": N}
        (project / "live.json").write_text(json.dumps(live))
        proc = subprocess.Popen(
            command, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,  # the kill reaches this process alone, as `kill -9 PID` would
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 180
            while not (pids_file.exists() and _lines(store / "fault-chat.jsonl") >= 10):
                assert proc.poll() is None, proc.stdout.read()  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "the live run did not start"
                time.sleep(0.1)
            pids = json.loads(pids_file.read_text())
            assert all(_alive(pid) for pid in pids.values()), pids
            if target == "valuelex":
                assert pids["valuelex"] == proc.pid
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)

            deadline = time.monotonic() + 20  # the run itself would take about 50 s more
            while any(_alive(pid) for pid in pids.values()) and time.monotonic() < deadline:
                time.sleep(0.1)
            survivors = {name: pid for name, pid in pids.items() if _alive(pid)}
            received = server.stats()["total"]
            time.sleep(1.0)
            assert server.stats()["total"] == received, "calls still arrive after the kill"
        finally:
            for pid in pids.values():  # whatever this test started must not keep running
                if _alive(pid):
                    os.kill(pid, signal.SIGKILL)
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
            proc.stdout.close()  # type: ignore[union-attr]
    assert not survivors, f"{', '.join(survivors)} outlived the SIGKILL of {target}"
    assert received < N / 2, f"{received} of {N} calls were made: the run went on after the kill"
