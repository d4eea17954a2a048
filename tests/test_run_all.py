"""run_all.sh (set-up, then ``valuelex run``): settings checked before anything runs, one-line errors,
and the running notebook and its kernel stopped on INT/TERM.

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

from valuelex.core import paths

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
    """A scratch project: run_all.sh, the lock files (so the shared .venv counts as set up), the configs,
    and notebooks of our own (01 records its pids and sleeps, 02 raises a configuration error)."""
    venv = ROOT / ".venv"
    stamp = venv / ".valuelex-lock"
    want = hashlib.sha256((ROOT / "requirements.lock").read_bytes() + (ROOT / "pyproject.toml").read_bytes())
    if not stamp.exists() or stamp.read_text().strip() != want.hexdigest()[:16]:
        pytest.skip("the .venv is not set up for this checkout's lock file (run ./run_all.sh --setup-only)")
    for name in ("run_all.sh", "requirements.lock", "pyproject.toml"):
        shutil.copy2(ROOT / name, tmp_path / name)
    (tmp_path / ".venv").symlink_to(venv.resolve())
    (tmp_path / "configs").symlink_to(ROOT / "configs")
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    parameters = 'run = "default"\noverrides = {}'
    record = (
        "import json, os, pathlib\n"
        "from valuelex import stages\n"
        "settings = stages.start(run, overrides).settings\n"
        "pathlib.Path('../seen.json').write_text(json.dumps({'n_factors': settings.efa.n_factors,"
        " 'kernel': os.getpid(), 'papermill': os.getppid()}))"
    )
    sleep = "import time\ntime.sleep(600 if settings.efa.n_boot == 7 else 0)"
    (nbs / "01_first.ipynb").write_text(json.dumps(notebook(parameters, record, sleep)))
    fail = "from valuelex.core.errors import ConfigError\nraise ConfigError('configs/x.yaml: field \\'y\\' is wrong')"
    (nbs / "02_second.ipynb").write_text(json.dumps(notebook(parameters, fail)))
    crash = "open('/nonexistent/judge.gguf')"  # not a user's mistake: a failed computation
    (nbs / "03_third.ipynb").write_text(json.dumps(notebook(parameters, crash)))
    return tmp_path


def run_all(project: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VALUELEX_")}
    return subprocess.run(
        ["bash", "run_all.sh", *args], cwd=project, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set"], "run_all.sh: --set needs 1 value(s) (see --help)"),
        (["--only"], "run_all.sh: --only needs 1 value(s) (see --help)"),
        (["--bogus"], "run_all.sh: unknown argument --bogus (see --help)"),
        (["--set", "efa.n_factor=3"], "did you mean 'n_factors'"),
        (["--set", "efa.n_factors=abc"], "n_factors"),
        (["--set", "elicitation.use_system_prompt=maybe"], "use_system_prompt"),
        (["--only", "99"], "--only 99: no notebook starts with it (notebooks: 01_first, 02_second, 03_third)"),
        (["--only", "0"], "--only 0: no notebook starts with it"),
        (["--only", "02", "--from", "03"], "--only 02 --from 03: selects no notebook"),
        (["--set", "efa.cutoff=5", "--set", "efa.cutoff=0.4"], "--set efa.cutoff is given twice (5 and 0.4)"),
        (["no_such_run"], "run file not found"),
    ],
)
def test_bad_arguments_stop_before_anything_runs(project: Path, args: list[str], message: str):
    (project / "build").mkdir()
    (project / "build" / "timings.tsv").write_text("01_first\t3\n")
    run = run_all(project, *args)
    assert run.returncode == 2, run.stdout + run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], run.stderr
    assert "Traceback" not in run.stderr
    assert not (project / "seen.json").exists()  # no notebook ran
    assert (project / "build" / "timings.tsv").read_text() == "01_first\t3\n"  # the last timings are kept


def test_settings_reach_the_notebook_with_their_types(project: Path):
    run = run_all(project, "--only", "01", "--set", "efa.n_factors=3")
    assert run.returncode == 0, run.stdout + run.stderr
    assert json.loads((project / "seen.json").read_text())["n_factors"] == 3
    assert "stale: 02_second" in run.stdout  # the notebook after it has not seen the new setting


def test_a_configuration_error_in_a_notebook_is_one_line_and_exit_code_2(project: Path):
    run = run_all(project, "--only", "02")
    assert run.returncode == 2, run.stdout + run.stderr
    assert run.stderr.strip().splitlines() == [
        "valuelex: 02_second: ConfigError: configs/x.yaml: field 'y' is wrong"
    ], run.stderr
    assert "Traceback" not in run.stdout + run.stderr


def test_a_failed_notebook_is_one_line_without_a_traceback(project: Path):
    run = run_all(project, "--only", "03")
    assert run.returncode == 1, run.stdout + run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("valuelex: 03_third failed: FileNotFoundError: "), run.stderr
    assert "(traceback: " in lines[0] and "03_third.log" in lines[0]
    assert "Traceback" not in run.stdout + run.stderr


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status  # a zombie has exited


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_the_notebook_and_its_kernel(project: Path, sig: signal.Signals, code: int):
    env = {k: v for k, v in os.environ.items() if not k.startswith("VALUELEX_")}
    proc = subprocess.Popen(
        ["bash", "run_all.sh", "--only", "01", "--set", "efa.n_boot=7"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # the signal goes to run_all.sh alone, as `kill PID` would send it
        # as from a terminal: a shell started with SIGINT ignored (a background job) cannot trap it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
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
    assert "stopped by signal 15 while running 01_first" in output, output  # passed on as SIGTERM
    deadline = time.monotonic() + 20
    while (_alive(pids["kernel"]) or _alive(pids["papermill"])) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(pids["papermill"]), "papermill outlived run_all.sh"
    assert not _alive(pids["kernel"]), "the kernel outlived run_all.sh"
