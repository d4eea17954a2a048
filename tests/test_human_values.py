"""Human value systems against the LLM lexicon (valuelex.human_values) and notebook 08."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import run_notebook
from valuelex import human_values as hv
from valuelex import semantic


@pytest.fixture(scope="module")
def embed(tmp_path_factory: pytest.TempPathFactory):
    embedder = semantic.Embedder(cache_dir=tmp_path_factory.mktemp("embeddings"))
    return embedder.embed_words


@pytest.fixture(scope="module")
def frameworks() -> dict[str, hv.Framework]:
    return hv.load_frameworks()


@pytest.fixture(scope="module")
def calibrations(frameworks, embed) -> dict[str, hv.Calibration]:
    return {key: hv.calibrate(fw, embed) for key, fw in frameworks.items()}


def test_frameworks_are_the_sources_categories(frameworks: dict[str, hv.Framework]) -> None:
    schwartz, mft = frameworks["schwartz"], frameworks["moral_foundations"]
    assert schwartz.category_names == [
        "Self-Direction",
        "Stimulation",
        "Hedonism",
        "Achievement",
        "Power",
        "Security",
        "Conformity",
        "Tradition",
        "Benevolence",
        "Universalism",
    ]
    assert set(schwartz.categories["higher_order"]) == {
        "Openness to change",
        "Self-enhancement",
        "Conservation",
        "Self-transcendence",
    }
    assert mft.category_names == ["Care", "Fairness", "Loyalty", "Authority", "Sanctity"]
    assert "Liberty" in hv.load_frameworks(include_provisional=True)["moral_foundations"].category_names
    for fw in frameworks.values():
        assert (fw.categories["n_markers"] >= 3).all()
        assert fw.categories["definition"].str.len().gt(20).all()
        assert not fw.markers.duplicated().any()
    assert len(hv.load_neutral_words()) >= 100


@pytest.mark.parametrize(
    ("framework", "word", "expected"),
    [
        ("schwartz", "tradition", {"Tradition"}),
        ("schwartz", "successful", {"Achievement"}),
        ("schwartz", "riches", {"Power"}),
        ("schwartz", "polite", {"Conformity"}),
        ("schwartz", "thrill", {"Stimulation"}),
        ("schwartz", "honest", {"Benevolence"}),
        ("moral_foundations", "fairness", {"Fairness", "Care"}),
        ("moral_foundations", "unfairness", {"Fairness"}),
        ("moral_foundations", "compassion", {"Care"}),
        ("moral_foundations", "patriotism", {"Loyalty"}),
        ("moral_foundations", "obedience", {"Authority"}),
        ("moral_foundations", "purity", {"Sanctity"}),
    ],
)
def test_obvious_words_go_to_their_category_and_are_covered(
    frameworks, calibrations, embed, framework: str, word: str, expected: set[str]
) -> None:
    row = hv.assign([word], frameworks[framework], embed, calibrations[framework].threshold).iloc[0]
    assert row["category"] in expected
    assert row["covered"]
    assert row["margin"] > 0.03


def test_everyday_words_are_not_covered(frameworks, calibrations, embed) -> None:
    for key, fw in frameworks.items():
        table = hv.assign(["table", "bicycle", "potato"], fw, embed, calibrations[key].threshold)
        assert not table["covered"].any(), key


def test_threshold_separates_marker_words_from_neutral_words(calibrations) -> None:
    for cal in calibrations.values():
        assert cal.threshold == pytest.approx(np.quantile(cal.null, 0.95))
        assert cal.false_positive_rate == pytest.approx(0.05, abs=0.01)
        # measured: Schwartz 0.70, moral foundations 0.93 of held-out marker words pass
        assert cal.marker_pass_rate >= 0.6
        assert cal.markers.median() > cal.null.median() + 0.1
        assert 0.35 < cal.threshold < 0.6


def test_coverage_arithmetic() -> None:
    lexicon = pd.DataFrame(
        {"word": ["a", "b", "c", "d"], "count": [50, 30, 15, 5], "respondents": [20, 10, 6, 3], "models": 1}
    )
    assignment = pd.DataFrame(
        {
            "word": ["a", "b", "c", "d"],
            "category": ["X", "Y", "X", "Y"],
            "similarity": [0.3, 0.7, 0.6, 0.2],
            "covered": [False, True, True, False],
        }
    )
    cov = hv.coverage(assignment, lexicon)
    assert cov == {"n_words": 4, "n_covered": 2, "share_words": 0.5, "share_usage": 0.45}
    assert hv.coverage(assignment, lexicon, weight="respondents")["share_usage"] == pytest.approx(16 / 39)
    missed = hv.uncovered_words(assignment, lexicon)
    assert missed["word"].tolist() == ["a", "d"]  # ranked by usage
    curve = hv.coverage_curve({"f": assignment}, lexicon, thresholds=[0.1, 0.5, 0.8])
    assert curve["share_words"].tolist() == [1.0, 0.5, 0.0]
    framework = hv.Framework(
        "f",
        "F",
        "test",
        pd.DataFrame({"category": ["X", "Y", "Z"], "higher_order": ["H", "H", "G"], "definition": "", "n_markers": 1}),
        pd.DataFrame({"category": ["X", "Y", "Z"], "marker": ["x", "y", "z"]}),
    )
    counts = hv.category_counts(assignment, framework, lexicon)
    assert counts["n_words"].tolist() == [1, 1, 0]
    assert counts["usage_share"].tolist() == pytest.approx([0.15, 0.30, 0.0])
    assert hv.empty_categories(counts) == ["Z"]
    other = assignment.assign(covered=[True, False, False, False])
    assert hv.uncovered_across({"f": assignment, "g": other}, lexicon)["word"].tolist() == ["d"]


def test_cfa_indicators_keep_usable_words_and_drop_thin_factors() -> None:
    rng = np.random.default_rng(0)
    words = ["w1", "w2", "w3", "w4", "w5", "rare", "v1", "v2"]
    incidence = pd.DataFrame(rng.integers(0, 2, size=(40, len(words))), columns=words)
    incidence["rare"] = 0
    incidence.loc[:1, "rare"] = 1  # used by 2 units only
    assignment = pd.DataFrame(
        {
            "word": words + ["absent"],
            "category": ["A", "A", "A", "A", "B", "B", "C", "C", "B"],
            "similarity": [0.9, 0.8, 0.7, 0.6, 0.9, 0.8, 0.9, 0.8, 0.7],
            "covered": [True, True, True, True, True, True, True, False, True],
        }
    )
    framework = hv.Framework(
        "f",
        "F",
        "test",
        pd.DataFrame({"category": ["A", "B", "C"], "higher_order": ["H", "H", "G"], "definition": "", "n_markers": 1}),
        pd.DataFrame({"category": ["A", "B", "C"], "marker": ["a", "b", "c"]}),
    )
    kept, table = hv.cfa_indicators(assignment, incidence, framework, min_indicators=2, max_indicators=3)
    assert kept == {"A": ["w1", "w2", "w3"]}  # B: only w5 usable ("rare" too rare, "absent" not a column)
    assert table.set_index("factor")["usable_words"].to_dict() == {"A": 4, "B": 1, "C": 1}
    higher, _ = hv.cfa_indicators(
        assignment, incidence, framework, level="higher_order", min_indicators=2, max_indicators=None
    )
    assert higher == {"H": ["w1", "w5", "w2", "w3", "w4"]}
    assert hv.dropped_notes(table) == ["B left out: fewer than 2 usable words", "C left out: fewer than 2 usable words"]


def test_cfa_models_for_first_and_second_order(frameworks) -> None:
    schwartz = frameworks["schwartz"]
    indicators = {
        "Security": ["safety", "privacy", "security"],
        "Conformity": ["respect", "politeness", "obedience"],
        "Benevolence": ["honesty", "helpfulness", "kindness"],
    }
    flat = hv.cfa_models("Schwartz basic values", indicators, notes=["Power left out"])
    assert flat.factors == indicators and not flat.higher_order and flat.notes == ["Power left out"]
    second = hv.cfa_models("Schwartz 10 under 4", indicators, schwartz, second_order=True)
    # Benevolence is the only Self-transcendence value with indicators: no second-order factor for it
    assert second.higher_order == {"Conservation": ["Security", "Conformity"]}
    assert list(second.factors) == ["Security", "Conformity"]
    assert second.notes == ["Self-transcendence left out: 1 first-order factor(s) with indicators"]


def test_assignment_models_name_their_family_and_add_a_baseline(frameworks) -> None:
    rng = np.random.default_rng(1)
    schwartz = frameworks["schwartz"]
    words = [f"{c.lower()}{i}" for c in schwartz.category_names[:4] for i in range(3)]
    incidence = pd.DataFrame(rng.integers(0, 2, size=(30, len(words))), columns=words)
    assignment = pd.DataFrame(
        {"word": words, "category": [w[:-1].title() for w in words], "similarity": 0.6, "covered": True}
    )
    specs, families, indicators = hv.assignment_models({"schwartz": assignment}, frameworks, incidence)
    assert [s.name for s in specs] == [
        "Schwartz: basic values",
        "Schwartz: 4 higher-order values",
        "one factor on the words of 'Schwartz: basic values' (baseline)",
    ]
    assert len(specs[0].factors) == 4 and set(families.values()) == {"human", "baseline"}
    assert list(specs[1].factors) == ["Openness to change", "Self-enhancement"]
    assert set(indicators["model"]) == {"Schwartz: basic values", "Schwartz: 4 higher-order values"}
    with_second, _, _ = hv.assignment_models({"schwartz": assignment}, frameworks, incidence, second_order=True)
    assert with_second[2].higher_order == {"Openness to change": ["Self-Direction", "Stimulation", "Hedonism"]}
    assert "Self-enhancement left out: 1 first-order factor(s) with indicators" in with_second[2].notes


def test_taxonomy_framework_from_example_words() -> None:
    taxonomy = {
        "dimensions": {
            "Competence": {
                "Self-Competent": [{"marker": "Accuracy", "variants": ["accurate"]}, "Knowledge"],
                "User-Oriented": [{"marker": "Helpful"}],
            },
            "Integrity": {"Ethical": ["Justice"]},
        }
    }
    fw = hv.taxonomy_framework(taxonomy)
    assert fw.category_names == ["Self-Competent", "User-Oriented", "Ethical"]
    assert fw.categories["higher_order"].tolist() == ["Competence", "Competence", "Integrity"]
    assert fw.markers["marker"].tolist() == ["accuracy", "knowledge", "helpful", "justice"]
    assert hv.taxonomy_framework(taxonomy, level="dimension").category_names == ["Competence", "Integrity"]


def test_notebook_08_maps_the_lexicon_and_fits_the_structures(processed_pipeline: dict, tmp_path: Path) -> None:
    env = {k: v for k, v in processed_pipeline.items() if k.startswith("VALUELEX_")}
    numbers = run_notebook("08_human_values", tmp_path, {}, env)
    n_words = processed_pipeline["02"]["lexicon_size"]
    assert numbers["lexicon_words"] == n_words
    for key in ("schwartz", "moral_foundations"):
        assert 0.35 < numbers[f"threshold_{key}"] < 0.6
        assert numbers[f"marker_pass_{key}"] >= 0.6
    for key in ("schwartz", "moral_foundations", "valuelex"):
        assert 0 <= numbers["coverage_words"][key] <= 1
        assert 0 <= numbers["coverage_usage"][key] <= 1
    assert 0 <= numbers["uncovered_by_both"] <= n_words
    assert len(numbers["top_uncovered"]) == min(10, numbers["uncovered_by_both"])
    assert set(numbers["empty_categories"]) == {"Schwartz basic values", "Moral foundations"}
    assert numbers["cfa_respondents"] == 120
    for name, fit in numbers["cfa"].items():
        assert fit["df"] > 0 and fit["chi2"] > 0, name
        assert 0 <= fit["cfi"] <= 1 and fit["rmsea"] >= 0 and 0 <= fit["srmr"] < 1, name
    processed = Path(env["VALUELEX_PROCESSED"])
    per_word = pd.read_csv(processed / "human_values_assignment.csv")
    assert len(per_word) == n_words and per_word["schwartz_category"].notna().all()
    comparison = pd.read_csv(Path(env["VALUELEX_FIGURES"], "human_values_cfa_comparison.csv"))
    assert {"ValueLex", "human", "baseline"} >= set(comparison["family"])
    assert hv.testable(comparison).sum() == numbers["cfa_models_testable"] == len(numbers["cfa"])
    # a model that is not estimable on these respondents is named with the reason, and has no fit index
    assert numbers["cfa_estimator"] == "WLSMV"
    withheld = comparison[~comparison["estimable"]]
    assert set(withheld["model"]) == set(numbers["cfa_not_estimable"])
    assert withheld[["chi2", "CFI", "RMSEA", "SRMR"]].isna().all().all()
    assert all(reason.startswith(("not estimable", "not fitted")) for reason in numbers["cfa_not_estimable"].values())
    for name in ("human_values_coverage", "human_values_assignment", "human_values_cfa_comparison"):
        assert Path(env["VALUELEX_FIGURES"], f"{name}.png").exists()


def test_the_human_values_stage_reports_what_it_saved(tmp_path: Path) -> None:
    """Stage 08 run into empty folders: its report, its notes and its numbers are those of the files it wrote."""
    import shutil

    from valuelex import stages
    from valuelex.core import paths
    from valuelex.settings import load_run

    processed = tmp_path / "processed"
    processed.mkdir()
    for name in stages.human_values.STAGE.inputs:
        shutil.copy(paths.COMMITTED_PROCESSED / name, processed / name)
    folders = stages.Folders(processed, tmp_path / "figures", tmp_path / "build", tmp_path / "raw")
    result = stages.human_values.run(stages.Run(load_run("default"), folders))
    numbers = result.metrics()

    cover = pd.read_csv(folders.figures / "human_values_coverage.csv").set_index("framework")  # at 3 decimals
    for key, share in numbers["coverage_words"].items():
        assert share == pytest.approx(cover.loc[result.names[key], "share_words"], abs=5e-4), key
    uncovered = pd.read_csv(folders.figures / "human_values_uncovered.csv")
    assert uncovered["word"].tolist() == result.uncovered["word"].tolist()
    assert numbers["top_uncovered"] == uncovered["word"].head(10).tolist()
    assert len(uncovered) == min(result.top_n, numbers["uncovered_by_both"])
    comparison = pd.read_csv(folders.figures / "human_values_cfa_comparison.csv")
    assert numbers["cfa_models"] == len(comparison) == len(result.comparison_shown)
    assert set(numbers["cfa_not_estimable"]) == set(comparison.loc[~comparison["estimable"], "model"])
    assert set(result.figures) == {"threshold", "coverage", "coverage_curve", "assignment", "cfa_comparison"}

    text = str(result)  # the console report: sections, not a dataclass repr or a raw dict
    assert text.startswith("Human value systems against the LLM lexicon") and "{'" not in text
    assert f"{numbers['lexicon_words']} lexicon words" in text and result.uncovered_note() in text
    assert result.empty_note().count("categories without any LLM word") == len(result.counts) == 2
