"""run_all.sh: parameters checked before anything runs, one-line errors, and its children stopped on INT/TERM.

Each test runs the real script in a scratch copy of the project whose ``notebooks/`` holds small
notebooks of our own (one sleeps, one raises a configuration error), with the shared ``.venv``.
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

from valuelex import paths

ROOT = paths.ROOT


def notebook(parameters: str, *cells: str) -> dict:
    def code(source: str, tags: list[str] | None = None) -> dict:
        meta = {"tags": tags} if tags else {}
        return {"cell_type": "code", "metadata": meta, "source": source, "outputs": [], "execution_count": None}

    return {
        "cells": [code(parameters, ["parameters"]), *(code(c) for c in cells)],
        "metadata": {"kernelspec": {"name": "valuelex", "display_name": "Python (valuelex)", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A scratch project: run_all.sh, the lock files (so the shared .venv counts as set up), our notebooks."""
    venv = ROOT / ".venv"
    stamp = venv / ".valuelex-lock"
    want = hashlib.sha256((ROOT / "requirements.lock").read_bytes() + (ROOT / "pyproject.toml").read_bytes())
    if not stamp.exists() or stamp.read_text().strip() != want.hexdigest()[:16]:
        pytest.skip("the .venv is not set up for this checkout's lock file (run ./run_all.sh --setup-only)")
    for name in ("run_all.sh", "requirements.lock", "pyproject.toml"):
        shutil.copy2(ROOT / name, tmp_path / name)
    (tmp_path / ".venv").symlink_to(venv.resolve())
    (tmp_path / "valuelex").symlink_to(ROOT / "valuelex")
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    record = (
        "import json, os, pathlib\n"
        "pathlib.Path('../seen.json').write_text(json.dumps({'flag': flag, 'n': n, 'kernel': os.getpid(),"
        " 'papermill': os.getppid()}))"
    )
    sleep = "import time\ntime.sleep(seconds)"
    (nbs / "01_first.ipynb").write_text(json.dumps(notebook("flag = True\nn = 1\nseconds = 0", record, sleep)))
    fail = "from valuelex.config import ConfigError\nif fail:\n    raise ConfigError('configs/x.yaml: field \\'y\\' is wrong')"
    (nbs / "02_second.ipynb").write_text(json.dumps(notebook("fail = False", fail)))
    return tmp_path


def run_all(project: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        ["bash", "run_all.sh", *args], cwd=project, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-p", "flg", "false"], "error: unknown parameter 'flg': no notebook to run takes it (did you mean 'flag'?)"),
        (
            ["-p", "zzz", "1"],
            "error: unknown parameter 'zzz': no notebook to run takes it (the notebooks to run take: fail, flag, n, seconds)",
        ),
        (
            ["-p", "n", "abc"],
            "error: parameter 'n' of notebook 01_first takes an integer (default 1), got 'abc'",
        ),
        (
            ["-p", "flag", "maybe"],
            "error: parameter 'flag' of notebook 01_first takes true or false (default True), got 'maybe'",
        ),
        (
            ["--only", "99"],
            "error: --only 99 matches no notebook (notebooks: 01_first, 02_second)",
        ),
        (["-p", "flag"], "run_all.sh: -p needs 2 value(s) (see --help)"),
        (["--only"], "run_all.sh: --only needs 1 value(s) (see --help)"),
        (["--bogus"], "run_all.sh: unknown argument --bogus (see --help)"),
    ],
)
def test_bad_arguments_stop_before_anything_runs(project: Path, args: list[str], message: str):
    (project / "build").mkdir()
    (project / "build" / "timings.tsv").write_text("01_first\t3\n")
    run = run_all(project, *args)
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip().splitlines()[-1] == message
    assert "Traceback" not in run.stderr
    assert not (project / "seen.json").exists()  # no notebook ran
    assert (project / "build" / "timings.tsv").read_text() == "01_first\t3\n"  # the last timings are kept


def test_parameters_reach_the_notebook_with_their_types(project: Path):
    run = run_all(project, "--only", "01", "-p", "flag", "false", "-p", "n", "3")
    assert run.returncode == 0, run.stdout + run.stderr
    seen = json.loads((project / "seen.json").read_text())
    assert seen["flag"] is False and seen["n"] == 3


def test_a_configuration_error_in_a_notebook_is_one_line_and_exit_code_2(project: Path):
    run = run_all(project, "--only", "02", "-p", "fail", "true")
    assert run.returncode == 2, run.stdout + run.stderr
    last = run.stdout.strip().splitlines()[-1]
    assert last.endswith("FAILED: 02_second: ConfigError: configs/x.yaml: field 'y' is wrong")
    assert "Traceback" not in run.stdout + run.stderr


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status  # a zombie has exited


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_the_notebook_and_its_kernel(project: Path, sig: signal.Signals, code: int):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        ["bash", "run_all.sh", "--only", "01", "-p", "seconds", "600"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # the signal goes to run_all.sh alone, as `kill PID` would send it
    )
    seen = project / "seen.json"
    deadline = time.monotonic() + 180
    while not seen.exists():
        assert proc.poll() is None, proc.stdout.read()  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "the notebook did not start"
        time.sleep(0.2)
    time.sleep(0.5)
    pids = json.loads(seen.read_text())
    assert _alive(pids["kernel"]) and _alive(pids["papermill"])
    os.kill(proc.pid, sig)
    assert proc.wait(60) == code
    output = proc.stdout.read()  # type: ignore[union-attr]
    assert f"interrupted by {sig.name}" in output
    deadline = time.monotonic() + 20
    while (_alive(pids["kernel"]) or _alive(pids["papermill"])) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(pids["papermill"]), "papermill outlived run_all.sh"
    assert not _alive(pids["kernel"]), "the kernel outlived run_all.sh"
