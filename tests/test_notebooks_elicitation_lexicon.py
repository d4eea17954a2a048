"""Notebooks 01-02 run through papermill on the committed data and record sensible numbers."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tests.conftest import run_notebook


def test_notebook_01_replays_the_committed_panel(processed_pipeline: dict) -> None:
    numbers = processed_pipeline["01"]
    assert numbers["respondents"] == 120
    assert numbers["models"] == 4
    assert numbers["responses"] == 120 * 15
    assert numbers["calls_made"] == 0  # replay never calls out
    assert numbers["store_hits"] == 1800
    assert numbers["parse_ok_share"] > 0.8
    assert numbers["descriptors"] > 5 * numbers["responses"] * numbers["parse_ok_share"] / 2
    processed = Path(processed_pipeline["VALUELEX_PROCESSED"])
    responses = pd.read_csv(processed / "responses.csv")
    assert len(responses) == 1800 and responses["text"].notna().sum() > 1700
    assert Path(processed_pipeline["VALUELEX_FIGURES"], "elicitation_parse_status.png").exists()


def test_notebook_02_builds_the_lexicon(processed_pipeline: dict) -> None:
    numbers = processed_pipeline["02"]
    assert 40 <= numbers["lexicon_size"] <= 400
    assert numbers["incidence_shape"] == [120, numbers["lexicon_size"]]
    assert numbers["raw_descriptors"] == processed_pipeline["01"]["descriptors"]
    processed = Path(processed_pipeline["VALUELEX_PROCESSED"])
    lexicon = pd.read_csv(processed / "lexicon.csv")
    assert (lexicon["respondents"] >= numbers["min_respondents"]).all()
    funnel = pd.read_csv(processed / "lexicon_funnel.csv")
    assert funnel["unique_terms"].is_monotonic_decreasing
    for name in ("lexicon_funnel", "lexicon_top_words", "lexicon_top_words_by_stage"):
        assert Path(processed_pipeline["VALUELEX_FIGURES"], f"{name}.pdf").exists()


def test_notebook_02_parameters_change_the_result(processed_pipeline: dict, tmp_path: Path) -> None:
    """A stricter frequency filter gives a smaller lexicon (and writes only to the given folder)."""
    env = {k: v for k, v in processed_pipeline.items() if k.startswith("VALUELEX_")}
    strict_dir = tmp_path / "processed"
    strict_dir.mkdir()
    for name in ("descriptors_raw.csv", "respondents.csv", "responses.csv"):
        (strict_dir / name).write_bytes(Path(env["VALUELEX_PROCESSED"], name).read_bytes())
    env = {**env, "VALUELEX_PROCESSED": str(strict_dir), "VALUELEX_FIGURES": str(tmp_path)}
    strict = run_notebook("02_lexicon", tmp_path, {"min_respondents": 20, "min_models": 2}, env)
    assert strict["lexicon_size"] < processed_pipeline["02"]["lexicon_size"]
