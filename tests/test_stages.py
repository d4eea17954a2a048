"""A run: its settings and folders, chosen in one place (``valuelex.stages``), and nothing rebound elsewhere."""

from __future__ import annotations

import os

import pandas as pd

from valuelex import stages
from valuelex.core import paths
from valuelex.stages.base import FOLDER_ENV


def test_start_uses_the_environment_folders_without_changing_any_module(tmp_path, monkeypatch):
    monkeypatch.setenv("VALUELEX_PROCESSED", str(tmp_path / "p"))
    monkeypatch.setenv("VALUELEX_FIGURES", str(tmp_path / "f"))
    static = {name: getattr(paths, name) for name in dir(paths) if name.isupper()}
    environment = dict(os.environ)
    run = stages.start("default", {"efa.n_factors": 2})
    assert run.settings.efa.n_factors == 2
    assert run.folders.processed == tmp_path / "p" and run.folders.figures == tmp_path / "f"
    assert {name: getattr(paths, name) for name in dir(paths) if name.isupper()} == static  # nothing rebound
    assert dict(os.environ) == environment  # and nothing exported


def test_a_changed_run_reads_the_dataset_as_its_base(tmp_path, monkeypatch):
    for name in FOLDER_ENV:
        monkeypatch.delenv(name, raising=False)
    run = stages.start("default", {"efa.n_factors": 2})  # an override: not the committed run
    assert run.folders.base == paths.DATASET.resolve()
    assert run.folders.processed != paths.COMMITTED_PROCESSED
    store = run.store("elicitation")
    assert store.root == run.folders.raw / "elicitation" and len(store) > 0  # the dataset's answers, read through


def test_a_run_saves_into_its_own_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("VALUELEX_PROCESSED", str(tmp_path / "p"))
    monkeypatch.setenv("VALUELEX_FIGURES", str(tmp_path / "f"))
    run = stages.start("default")
    table = pd.DataFrame({"word": ["care"], "count": [3]})
    assert run.save_data(table, "words") == tmp_path / "p" / "words.csv"
    assert run.save_table(table, "words") == [tmp_path / "f" / "words.csv", tmp_path / "f" / "words.md"]
    assert (tmp_path / "p" / "words.csv").read_text() == "word,count\ncare,3\n"


# a notebook as a stage: what it declares is what it writes (issue 21) ----------------------------------------
def _stage_run(tmp_path, inputs: tuple[str, ...]) -> stages.Run:
    """The default run's settings with its folders in tmp_path; ``inputs`` copied from the committed outputs."""
    import shutil

    from valuelex.settings import load_run

    processed = tmp_path / "processed"
    processed.mkdir()
    for name in inputs:
        shutil.copy(paths.COMMITTED_PROCESSED / name, processed / name)
    cache = paths.COMMITTED_PROCESSED / "cache"
    if cache.exists():  # the embedding cache only saves time
        shutil.copytree(cache, processed / "cache")
    folders = stages.Folders(processed, tmp_path / "figures", tmp_path / "build", tmp_path / "raw")
    return stages.Run(load_run("default"), folders)


def _written(run: stages.Run) -> set:
    return {p for folder in (run.folders.processed, run.folders.figures) for p in folder.glob("*.*")}


def test_a_stage_writes_exactly_the_outputs_it_declares(tmp_path):
    """Stage 09 run into empty folders: every declared file is written, and nothing else; its files are the
    committed ones byte for byte (the notebook narrated the same computation before it became a stage)."""
    stage = stages.figure1.STAGE
    run = _stage_run(tmp_path, stage.inputs)
    before = _written(run)
    result = stages.figure1.run(run)
    assert _written(run) - before == set(stage.files(run.folders))
    for path in stage.files(run.folders):
        committed = paths.COMMITTED_PROCESSED if path.parent == run.folders.processed else paths.COMMITTED_FIGURES
        if path.suffix != ".png":  # PNG bytes depend on the CPU's FreeType/AGG path only in principle; CSV, MD, PDF
            assert path.read_bytes() == (committed / path.name).read_bytes(), path.name
    assert set(result.figures) == {"lexicon_map", "taxonomy_wheel", "projective_bars"} and result.missing_scores == ""
    numbers = result.metrics()
    assert numbers["words_placed"] == len(pd.read_csv(run.folders.processed / "lexicon.csv"))
    assert sum(numbers["words_per_dimension"].values()) == numbers["words_placed"] and numbers["projective_bars"]
    assert "Words placed by sub-dimension" in str(result)


def test_a_stage_without_its_optional_input_says_what_it_did_not_draw(tmp_path):
    stage = stages.figure1.STAGE
    run = _stage_run(tmp_path, ("lexicon.csv", "semantic_clusters.csv"))  # notebook 06 has not run
    before = _written(run)
    result = stages.figure1.run(run)
    required = [f for out in stage.outputs if not out.optional for f in out.files(run.folders)]
    assert _written(run) - before == set(required)
    assert "projective_bars" not in result.figures and "projective_scores.csv is missing" in result.missing_scores
    assert result.metrics()["projective_bars"] is False and "Not drawn" in str(result)
