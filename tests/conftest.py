"""Shared fixtures: temporary output folders and running notebooks through papermill."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from valuelex.core import paths
from valuelex.core.display import recorded

KERNEL = "valuelex"
# semopy's results depend on Python's hash order; notebooks run in kernels that inherit this
os.environ.setdefault("PYTHONHASHSEED", "0")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


#: The run-file section each notebook reads its settings from (valuelex/settings.py).
NOTEBOOK_STAGES = {
    "01": "elicitation", "02": "lexicon", "03": "efa", "04": "cfa", "05": "semantic",
    "06": "projective", "07": "simulation", "08": "human_values", "09": "figure1",
}  # fmt: skip
#: Test shorthands for settings that live outside the notebook's own section.
SHORTHANDS = {"mode": "mode", "judge_model": "projective.judge", "cfa_estimator": "cfa.estimator"}


def overrides_for(name: str, settings: dict) -> dict:
    """``{"n_boot": 5}`` for notebook 03 -> ``{"efa.n_boot": 5}``: the notebook's ``overrides`` parameter."""
    stage = NOTEBOOK_STAGES[name[:2]]
    return {SHORTHANDS.get(k, k if "." in k else f"{stage}.{k}"): v for k, v in settings.items()}


def run_notebook(name: str, out_dir: Path, settings: dict | None = None, env: dict | None = None) -> dict:
    """Execute notebooks/<name>.ipynb with papermill into out_dir, the default run with ``settings``
    changed (names of the notebook's own section, dotted names, or SHORTHANDS); the numbers it recorded."""
    import papermill

    saved = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    try:
        out = Path(out_dir) / f"{name}.ipynb"
        papermill.execute_notebook(
            str(paths.NOTEBOOKS / f"{name}.ipynb"),
            str(out),
            parameters={"overrides": overrides_for(name, settings or {})},
            kernel_name=KERNEL,
            cwd=str(paths.NOTEBOOKS),
            progress_bar=False,
        )
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return recorded(out)


@pytest.fixture(scope="session")
def pipeline_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Temporary processed/ and figures/ folders, shared by the notebook smoke tests of a session."""
    root = tmp_path_factory.mktemp("pipeline")
    dirs = {"VALUELEX_PROCESSED": str(root / "processed"), "VALUELEX_FIGURES": str(root / "figures")}
    for d in dirs.values():
        Path(d).mkdir()
    dirs["out"] = str(root / "executed")
    Path(dirs["out"]).mkdir()
    return dirs


def require_rscript() -> str:
    """Path of Rscript; skip (on a laptop) or fail (in CI) when it is missing."""
    exe = shutil.which("Rscript")
    if exe is None:
        if IN_CI:
            pytest.fail("Rscript is required in CI (.ci/run installs r-base-core r-cran-psych r-cran-lavaan)")
        pytest.skip(
            "Rscript not installed: apt-get install r-base-core r-cran-psych r-cran-lavaan r-cran-gparotation r-cran-psychtools"
        )
    return exe


def require_r_package(name: str) -> None:
    """Skip (on a laptop) or fail (in CI) when an R package is not installed."""
    rscript = require_rscript()
    import subprocess

    found = (
        subprocess.run([rscript, "-e", f"quit(status = !requireNamespace('{name}', quietly = TRUE))"]).returncode == 0
    )
    if not found:
        message = f"R package {name} is not installed (apt-get install r-cran-{name.lower()})"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def processed_pipeline(pipeline_dirs: dict[str, str]) -> dict[str, str]:
    """Notebooks 01 and 02 run (replaying the committed responses) into the temporary folders.

    Later notebooks' smoke tests read their inputs from there; the numbers the two notebooks
    recorded are in the returned dict under "01" and "02".
    """
    env = {k: v for k, v in pipeline_dirs.items() if k.startswith("VALUELEX_")}
    out = dict(pipeline_dirs)
    out["01"] = run_notebook("01_elicitation", Path(pipeline_dirs["out"]), {}, env)  # type: ignore[assignment]
    out["02"] = run_notebook("02_lexicon", Path(pipeline_dirs["out"]), {}, env)  # type: ignore[assignment]
    return out
