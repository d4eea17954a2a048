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
