"""Running notebooks as a run: selection, staleness, and stopping a notebook's whole process tree."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from valuelex.app import pipeline
from valuelex.core.errors import ConfigError

NAMES = ["01_elicitation", "02_lexicon", "03_efa", "04_cfa", "05_semantic_clusters", "06_projective"]


def test_select_by_number_and_start():
    nbs = [Path(f"{n}.ipynb") for n in NAMES]
    assert [p.stem for p in pipeline.select(nbs, only=["03", "05"])] == ["03_efa", "05_semantic_clusters"]
    assert [p.stem for p in pipeline.select(nbs, start="04")] == NAMES[3:]
    with pytest.raises(ConfigError, match="--only 99: no notebook starts with it"):
        pipeline.select(nbs, only=["99"])
    with pytest.raises(ConfigError, match="--from 7: no notebook"):
        pipeline.select(nbs, start="7")


def test_a_value_that_names_several_notebooks_or_an_empty_selection_is_a_mistake():
    nbs = [Path(f"{n}.ipynb") for n in NAMES]
    assert [p.stem for p in pipeline.select(nbs, only=["3", "05"])] == ["03_efa", "05_semantic_clusters"]
    with pytest.raises(ConfigError, match="--only 0: no notebook starts with it"):
        pipeline.select(nbs, only=["0"])  # not a way to select every notebook
    with pytest.raises(ConfigError, match="--from 0: no notebook starts with it"):
        pipeline.select(nbs, start="0")
    with pytest.raises(ConfigError, match="--only 03 --from 05: selects no notebook"):
        pipeline.select(nbs, only=["03"], start="05")


def test_a_run_other_than_the_committed_one_writes_only_its_own_folders(tmp_path: Path, monkeypatch):
    from valuelex.core import paths
    from valuelex.settings import load_run

    for name in ("PROCESSED", "FIGURES", "BUILD", "RAW", "RAW_BASE"):
        monkeypatch.delenv(f"VALUELEX_{name}", raising=False)
    committed = pipeline.Folders.of(load_run("default"))
    assert committed.processed == paths.DATA / "processed" and committed.raw == paths.DATA / "raw"
    assert committed.base is None and committed.environment()["VALUELEX_RAW_BASE"] == ""
    shutil.copy(paths.CONFIGS / "runs" / "default.yaml", tmp_path / "mine.yaml")  # the README's copy
    mine = pipeline.Folders.of(load_run(tmp_path / "mine.yaml"))
    own = paths.ROOT / "runs" / "mine"
    assert (mine.processed, mine.figures, mine.build, mine.raw) == (
        own / "data" / "processed", own / "figures", own / "build", own / "raw"
    )  # fmt: skip
    assert mine.base == paths.DATA / "raw" and mine.environment()["VALUELEX_RAW_BASE"] == str(paths.DATA / "raw")
    changed = pipeline.Folders.of(load_run("default", {"efa.n_factors": 3}))
    assert changed.processed == paths.ROOT / "runs" / "default-changed" / "data" / "processed"
    assert changed.base == paths.DATA / "raw"


def test_the_stale_hint_repeats_the_runs_settings():
    from valuelex.settings import load_run

    overrides = {"efa.n_factors": 3, "simulation.sizes": [60, 120], "projective.second_scorer": None}
    command = pipeline.rerun_command(load_run("default", overrides), overrides)
    assert command == (
        "valuelex run default --set efa.n_factors=3 --set 'simulation.sizes=[60, 120]' "
        "--set projective.second_scorer=null"
    )
    assert pipeline.rerun_command(load_run("default")) == "valuelex run default"


def test_partial_run_marks_downstream_notebooks_stale():
    state = {name: {"finished": 100.0 + i, "settings": "abc"} for i, name in enumerate(NAMES)}
    assert pipeline.stale(state, "abc", NAMES) == {}
    state["01_elicitation"]["finished"] = 200.0  # --only 01 ran again
    why = pipeline.stale(state, "abc", NAMES)
    assert why["02_lexicon"] == "its input 01_elicitation ran after it"
    assert why["03_efa"] == "its input 01_elicitation ran after it"  # it reads 01's respondents.csv too
    assert why["05_semantic_clusters"] == "its input 02_lexicon is stale"
    assert "06_projective" not in why  # the projective test reads nothing the elicitation wrote
    assert pipeline.stale(state, "other", NAMES)["06_projective"] == "ran with other settings"
    del state["04_cfa"]
    assert pipeline.stale({}, "abc", NAMES)["04_cfa"] == "never ran in this output folder"


def _sleeping_notebook(folder: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('run = ""\noverrides = {}')
    params.metadata["tags"] = ["parameters"]
    body = nbformat.v4.new_code_cell(
        "import os, pathlib, time\npathlib.Path(os.environ['PID_FILE']).write_text(str(os.getpid()))\ntime.sleep(120)"
    )
    nb.cells = [params, body]
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    nb.metadata["language_info"] = {"name": "python"}
    path = folder / "01_sleep.ipynb"
    nbformat.write(nb, str(path))
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "State:\tZ" in status.read_text())


@pytest.mark.slow
def test_a_signal_stops_the_notebook_and_its_kernel(tmp_path: Path):
    notebook = _sleeping_notebook(tmp_path)
    pid_file = tmp_path / "kernel.pid"
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from valuelex import settings, stages\n"
        "from valuelex.app import pipeline\n"
        "run = settings.load_run('default')\n"
        f"folders = stages.Folders(Path({str(tmp_path)!r}) / 'p', Path({str(tmp_path)!r}) / 'f', "
        f"Path({str(tmp_path)!r}) / 'b', run.raw_dir)\n"
        "try:\n"
        f"    pipeline.execute(Path({str(notebook)!r}), run, folders, {{}})\n"
        "except pipeline.RunInterrupted as exc:\n"
        "    print(exc); sys.exit(130)\n"
    )
    env = {**os.environ, "PID_FILE": str(pid_file)}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not pid_file.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert pid_file.exists(), "the notebook never started"
    kernel = int(pid_file.read_text())
    assert _alive(kernel)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "stopped by signal 15 while running 01_sleep" in out
    deadline = time.monotonic() + 15
    while _alive(kernel) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(kernel), "the notebook's kernel outlived the run"


def test_state_file_round_trip(tmp_path: Path):
    folders = pipeline.Folders(tmp_path / "p", tmp_path / "f", tmp_path / "b", tmp_path / "r")
    assert pipeline.read_state(folders) == {}
    pipeline._write_state(folders, {"01_x": {"finished": 1.0, "settings": "s"}})
    assert json.loads((tmp_path / "b" / "state.json").read_text())["01_x"]["settings"] == "s"
