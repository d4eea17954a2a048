"""`pip install .` into a fresh virtual environment gives a working package and the `valuelex` command.

The installed package finds the project folder (configs, data) from the working directory, not
from its own location in site-packages. Slow (a full dependency install, from pip's cache when warm).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from valuelex.core import paths


def _run(cmd: list[str], cwd: Path, timeout: float = 1200) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VALUELEX_PROJECT", "VIRTUAL_ENV")}
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.slow
def test_pip_install_into_a_fresh_venv(tmp_path: Path):
    venv = tmp_path / "venv"
    assert _run([sys.executable, "-m", "venv", str(venv)], tmp_path).returncode == 0
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    torch = _run([*pip, "torch==2.13.0"], tmp_path)  # the CPU build first (see pyproject.toml)
    assert torch.returncode == 0, torch.stderr[-2000:]
    install = _run([*pip, str(paths.ROOT), "-c", str(paths.ROOT / "requirements.lock")], tmp_path)
    assert install.returncode == 0, install.stderr[-2000:]

    where = _run([str(venv / "bin" / "python"), "-c", "import valuelex; print(valuelex.__file__)"], tmp_path)
    assert "site-packages" in where.stdout, where.stdout + where.stderr

    valuelex = str(venv / "bin" / "valuelex")
    outside = _run([valuelex, "settings"], tmp_path)
    assert outside.returncode == 2
    assert "is not a ValueLex project folder" in outside.stderr and "Traceback" not in outside.stderr

    inside = _run([valuelex, "plan"], paths.ROOT)
    assert inside.returncode == 0, inside.stderr[-2000:]
    assert "to call                             0" in inside.stdout
    assert "run" in _run([valuelex, "--help"], paths.ROOT).stdout
