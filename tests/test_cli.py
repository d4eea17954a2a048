"""The one command: subcommands, and a user's mistake in one line with exit code 2."""

from __future__ import annotations

import subprocess
import sys

from valuelex import paths


def _cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "valuelex.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd or paths.ROOT,
        timeout=300,
    )


def test_help_lists_every_subcommand():
    out = _cli("--help")
    assert out.returncode == 0
    for command in ("run", "plan", "check", "settings", "status", "verify", "scorer-eval", "install-models"):
        assert command in out.stdout


def test_passed_on_subcommands_take_their_own_options():
    out = _cli("scorer-eval", "--help")
    assert out.returncode == 0 and "--cases" in out.stdout and "--part" in out.stdout
    out = _cli("scorer-eval", "--scorer", "embedding")  # --cases missing: the module's own one-line usage error
    assert out.returncode == 2 and "--cases" in out.stderr and "Traceback" not in out.stderr


def test_configuration_mistake_is_one_line_with_exit_code_2():
    out = _cli("settings", "-s", "efa.n_factor=3")
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert "default.yaml: efa: unknown setting 'n_factor'" in out.stderr
    out = _cli("plan", "-s", "elicitation.panel=no-such-panel")
    assert out.returncode == 2 and "no-such-panel.yaml: file not found" in out.stderr


def test_settings_and_plan_of_the_default_run():
    out = _cli("settings")
    assert out.returncode == 0 and "Run 'default' (replay)" in out.stdout and "n_factors" in out.stdout
    out = _cli("plan")
    assert out.returncode == 0
    assert "to call                             0" in out.stdout  # everything of the default run is stored
