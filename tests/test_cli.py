"""The one command: subcommands, --help and --version, and a user's mistake in one line with exit
code 2, blamed on the file or the --set that holds it, and writing nothing."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from valuelex import __version__
from valuelex.core import paths

SUBCOMMANDS = ("run", "plan", "check", "settings", "status", "verify", "adopt", "scorer-eval", "install-models")


def _cli(*args: str, cwd=None, module: str = "valuelex.app.cli", timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        cwd=cwd or paths.ROOT,
        timeout=timeout,
    )


def _one_line_error(out: subprocess.CompletedProcess, message: str) -> None:
    assert out.returncode == 2, out.stdout[-2000:] + out.stderr[-2000:]
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
    assert message in out.stderr, out.stderr


def _tracked_state() -> str:
    """git's view of what a run could touch: the data, the outputs, the configs and the notebooks."""
    return subprocess.run(
        ["git", "status", "--porcelain", "--", "data", "figures", "configs", "notebooks"],
        cwd=paths.ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*.*"))}


def test_help_lists_every_subcommand():
    out = _cli("--help")
    assert out.returncode == 0
    for command in SUBCOMMANDS:
        assert command in out.stdout


def test_version():
    out = _cli("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"valuelex {__version__}"


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_help_exits_0_and_names_the_subcommand(command: str):
    """Before: `valuelex verify --help` printed `python -m valuelex.report` and exited 2."""
    out = _cli(command, "--help")
    assert out.returncode == 0, out.stderr
    assert f"usage: valuelex {command}" in out.stdout, out.stdout[:300]


def test_python_dash_m_valuelex_is_the_command():
    out = _cli("--version", module="valuelex")
    assert out.returncode == 0 and out.stdout.strip() == f"valuelex {__version__}"
    out = _cli("settings", module="valuelex")
    assert out.returncode == 0 and "Run 'default' (replay)" in out.stdout


def test_passed_on_subcommands_take_their_own_options():
    out = _cli("scorer-eval", "--help")
    assert out.returncode == 0 and "--cases" in out.stdout and "--part" in out.stdout
    out = _cli("scorer-eval", "--scorer", "embedding")  # --cases missing: the module's own one-line usage error
    assert out.returncode == 2 and "--cases" in out.stderr and "Traceback" not in out.stderr


def test_a_set_mistake_is_blamed_on_the_set_not_on_the_run_file():
    out = _cli("settings", "-s", "efa.n_factor=3")
    _one_line_error(out, "valuelex: --set efa.n_factor=3: efa: unknown setting 'n_factor' (did you mean 'n_factors'?)")
    assert "default.yaml" not in out.stderr
    out = _cli("plan", "-s", "elicitation.panel=no-such-panel")
    _one_line_error(out, "--set elicitation.panel=no-such-panel: elicitation.panel names 'no-such-panel'")


def test_a_file_mistake_is_blamed_on_the_file(tmp_path: Path):
    run = tmp_path / "mine.yaml"
    run.write_text("mode: live\nefa:\n  cutoff: 5\n", encoding="utf-8")
    _one_line_error(_cli("settings", str(run)), f"valuelex: {run}: efa.cutoff must be a number above 0 and at most 1")


def test_a_setting_given_twice_is_an_error():
    out = _cli("settings", "-s", "efa.n_boot=5", "--set", "efa.n_boot=6")
    _one_line_error(out, "--set efa.n_boot is given twice (5 and 6): give each setting once")


def test_an_unknown_judge_is_one_line_not_a_traceback():
    """Before: `projective: {judge: nosuchjudge}` ended `valuelex plan` in a KeyError traceback."""
    for command in ("plan", "check", "settings", "run"):
        out = _cli(command, "-s", "projective.judge=nosuchjudge")
        _one_line_error(out, "projective.judge names 'nosuchjudge', but there is no model card")


def test_settings_and_plan_of_the_default_run():
    out = _cli("settings")
    assert out.returncode == 0 and "Run 'default' (replay)" in out.stdout and "n_factors" in out.stdout
    assert "committed run           yes" in out.stdout
    out = _cli("plan")
    assert out.returncode == 0
    assert "to call                             0" in out.stdout  # everything of the default run is stored


def test_the_paper_run_prices_as_the_readme_says():
    out = _cli("plan", "paper")
    assert out.returncode == 0, out.stderr
    assert "74,448" in out.stdout  # 7,920 elicitation calls + 15,840 completions + at most 50,688 judge calls
    assert "upper bound: 15,840 completions not stored yet" in out.stdout


def test_check_of_a_replay_run_checks_nothing():
    """Before: `check` exited 1 on the replay run (three local models not installed), which calls nothing."""
    out = _cli("check")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "nothing to check" in out.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--only", "0"], "valuelex: --only 0: "),  # not every notebook
        (["--only", "03", "--from", "05"], "--only 03 --from 05: selects no notebook"),
        (["--only", "99"], "--only 99: no notebook starts with it"),
        (["-s", "efa.cutoff=5"], "--set efa.cutoff=5: efa.cutoff must be a number above 0 and at most 1, got 5"),
        (["-s", "output=data/raw"], "--set output=data/raw: field 'output' is data/raw, inside the project"),
        (["-s", "raw=README.md"], "--set raw=README.md: field 'raw' must be a folder, but README.md is a file"),
        (["-s", "elicitation.use_system_prompt=no"], "elicitation.use_system_prompt must be true or false, got 'no'"),
    ],
)
def test_a_bad_run_command_stops_before_anything_runs_and_writes_nothing(args: list[str], message: str):
    """Before: `--only 0` ran every notebook, an empty selection exited 0, and a bad --set changed
    figures/elicitation_usage.*; now each is one line, exit code 2, and no file changes."""
    before = _tracked_state()
    committed = {name: _digest(paths.ROOT / name) for name in ("data/processed", "figures")}
    state = paths.ROOT / "build" / "state.json"
    state_before = state.read_bytes() if state.exists() else None
    changed = paths.ROOT / "runs" / "default-changed"
    existed = changed.exists()
    out = _cli("run", *args, timeout=120)
    _one_line_error(out, message)
    assert _tracked_state() == before
    assert {name: _digest(paths.ROOT / name) for name in committed} == committed
    assert (state.read_bytes() if state.exists() else None) == state_before  # no notebook ran
    assert changed.exists() == existed


def test_the_default_run_with_a_set_never_writes_the_committed_outputs():
    """Before: `--set output=.` (or any --set naming the committed folders) regenerated figures/ and
    data/processed/ with changed settings. A changed run writes under runs/default-changed/."""
    before = _tracked_state()
    committed = {name: _digest(paths.ROOT / name) for name in ("data/processed", "figures")}
    out_dir = paths.ROOT / "runs" / "default-changed"
    existed = out_dir.exists()
    try:
        out = _cli("run", "--only", "01", "-s", "output=.", "-s", "elicitation.examples_per_model=1", timeout=600)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        assert "run 'default' writes to runs/default-changed/" in out.stdout
        assert (out_dir / "figures" / "elicitation_usage.csv").exists()
        assert {name: _digest(paths.ROOT / name) for name in committed} == committed
        assert _tracked_state() == before
        assert "verdict" not in out.stdout  # only the committed run is verified against the committed outputs
    finally:
        if not existed:
            shutil.rmtree(out_dir, ignore_errors=True)


def test_not_a_project_folder(tmp_path: Path):
    out = subprocess.run(
        [sys.executable, "-m", "valuelex.app.cli", "settings"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "VALUELEX_PROJECT": str(tmp_path)},
        timeout=120,
    )
    _one_line_error(out, "is not a ValueLex project folder")
