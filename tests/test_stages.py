"""A run: its settings and folders, chosen in one place (``valuelex.stages``), and nothing rebound elsewhere."""

from __future__ import annotations

import os

import pandas as pd
import pytest

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
    """The default run's settings with its folders in tmp_path; ``inputs`` copied from the committed outputs;
    its response stores empty ones of its own over the committed dataset (read only), as a changed run's."""
    import shutil

    from valuelex.settings import load_run

    processed = tmp_path / "processed"
    processed.mkdir()
    for name in inputs:
        shutil.copy(paths.COMMITTED_PROCESSED / name, processed / name)
    cache = paths.COMMITTED_PROCESSED / "cache"
    if cache.exists():  # the embedding cache only saves time
        shutil.copytree(cache, processed / "cache")
    folders = stages.Folders(processed, tmp_path / "figures", tmp_path / "build", tmp_path / "raw", paths.DATASET)
    return stages.Run(load_run("default"), folders)


def _written(run: stages.Run) -> set:
    return {p for folder in (run.folders.processed, run.folders.figures) for p in folder.glob("*.*")}


@pytest.mark.parametrize("name", stages.CONVERTED)
def test_a_stage_writes_exactly_the_outputs_it_declares(tmp_path, name):
    """A stage run into empty folders with all its inputs: every declared file is written, and nothing else;
    its files are the committed ones byte for byte (the notebook narrated the same computation before)."""
    module = getattr(stages, name)
    run = _stage_run(tmp_path, module.STAGE.inputs)
    before = _written(run)
    module.run(run)
    assert _written(run) - before == set(module.STAGE.files(run.folders))
    for path in module.STAGE.files(run.folders):
        committed = paths.COMMITTED_PROCESSED if path.parent == run.folders.processed else paths.COMMITTED_FIGURES
        if path.suffix != ".png":  # PNG rasterisation may differ on another CPU; CSV, Markdown and PDF may not
            assert path.read_bytes() == (committed / path.name).read_bytes(), path.name


def test_the_figure1_stage_reports_what_it_placed(tmp_path):
    run = _stage_run(tmp_path, stages.figure1.STAGE.inputs)
    result = stages.figure1.run(run)
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


def test_the_semantic_stage_without_the_factor_analysis_skips_only_the_comparison(tmp_path):
    stage = stages.semantic.STAGE
    run = _stage_run(tmp_path, ("lexicon.csv",))  # notebook 03 has not run
    before = _written(run)
    result = stages.semantic.run(run)
    efa_files = {f for out in stage.outputs if out.name.startswith("semantic_vs_efa") for f in out.files(run.folders)}
    assert _written(run) - before == set(stage.files(run.folders)) - efa_files
    assert not result.efa_available and "run notebook 03" in result.efa_note() and result.agreement is None
    numbers = result.metrics()
    assert numbers["efa_available"] is False and "ari_main" not in numbers and numbers["n_words"] == len(result.words)
