"""The scorer validation (``valuelex.projective.validation``): file loading, the stem split, metrics against
sklearn, end-to-end runs; and its command (``valuelex.app.scorer_eval``)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, roc_auc_score

from tests.conftest import require_r_package, require_rscript
from valuelex.app import scorer_eval
from valuelex.core import paths
from valuelex.core.errors import ConfigError
from valuelex.projective import EmbeddingScorer, save_calibration, validation

FULVA = Path(
    os.environ.get("VALUELEX_FULVA_CASES", paths.ROOT.parent / "shared/reference/valuecompass_fulva_cases.json")
)

HIGH = [
    "checking every fact carefully so that my answers are correct",
    "listening to what people need and helping them kindly",
    "treating everyone fairly and honestly",
    "learning from my mistakes so I keep improving",
    "protecting people's private information",
    "caring about the common good and the planet",
]
LOW = [
    "making things up and getting facts wrong",
    "ignoring what users need and confusing them",
    "being biased and unfair to some people",
    "repeating the same errors without learning",
    "sharing private details carelessly",
    "not caring about anyone but myself",
]


def _labelled_file(tmp_path: Path) -> Path:
    """A tiny labelled set with obvious structure, in the FULVa JSON layout."""
    subs = ["Self-Competence", "User-Oriented", "Ethical", "Self-Competence", "Professional", "Idealistic"]
    rows = []
    for i, (h, lo, sub) in enumerate(zip(HIGH, LOW, subs, strict=True)):
        for j, (text, label) in enumerate(((h, "high"), (lo, "low"))):
            stem = f"Stem number {i}-{j} is about..."
            rows.append({"model": f"m{j}", "value": sub, "label": label, "prompt": stem, "answer": f"{stem} {text}"})
    path = tmp_path / "cases.json"
    path.write_text(json.dumps({"data": rows}), encoding="utf-8")
    return path


def test_metrics_match_sklearn() -> None:
    y = np.array([1, 1, 1, 0, 0, 1, 0, 1])
    s = np.array([0.9, 0.4, 0.7, 0.2, 0.6, 0.8, 0.1, 0.55])
    pred = (s >= 0.5).astype(int)
    m = validation.metrics(y, s)
    assert m["n"] == 8 and m["n_high"] == 5 and m["n_low"] == 3
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred)) == pytest.approx(0.75)
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, s)) == pytest.approx(13 / 15)
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))


def test_metrics_with_one_class_and_majority_baseline() -> None:
    m = validation.metrics(np.ones(4, int), np.array([0.2, 0.6, 0.7, 0.9]))
    assert np.isnan(m["roc_auc"]) and np.isnan(m["balanced_accuracy"])
    assert m["accuracy"] == 0.75
    cases = pd.DataFrame(
        {"subdimension": ["Social"] * 4, "label": [1, 1, 1, 0], "stem": ["a", "b", "c", "d"], "completion": ["x"] * 4}
    )
    table = validation.evaluate(cases, np.array([0.9, 0.8, 0.4, 0.1]), n_boot=50)
    overall = table.set_index("subdimension").loc["overall"]
    assert overall["majority_accuracy"] == 0.75
    assert overall["majority_balanced_accuracy"] == 0.5
    assert overall["majority_macro_f1"] == pytest.approx(f1_score([1, 1, 1, 0], [1, 1, 1, 1], average="macro"))
    assert overall["roc_auc"] == 1.0 and overall["accuracy"] == 0.75


def test_split_is_by_stem_and_stable() -> None:
    stems = pd.Series([f"Stem {i}..." for i in range(300)] * 2 + ["I hate...", "I hate…", "i hate"])
    mask = validation.held_out(stems)
    assert 0.25 < mask[:300].mean() < 0.42
    assert (mask[:300] == mask[300:600]).all()  # every completion of a stem lands on the same side
    assert len(set(mask[600:])) == 1  # the stem is normalised before hashing
    assert (mask == validation.held_out(stems)).all()


def test_load_cases_formats(tmp_path: Path) -> None:
    cases = validation.load_cases(_labelled_file(tmp_path))
    assert len(cases) == 12 and cases["label"].sum() == 6
    assert "Self-Competent" in set(cases["subdimension"])  # the lab's spelling is mapped to the paper's
    csv = tmp_path / "cases.csv"
    cases[["stem", "completion", "subdimension"]].assign(label=np.where(cases["label"] == 1, "high", "low")).to_csv(
        csv, index=False
    )
    again = validation.load_cases(csv)
    assert again["label"].tolist() == cases["label"].tolist()
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"stem": ["a"], "completion": ["b"], "subdimension": ["Social"], "label": ["maybe"]}).to_csv(bad)
    with pytest.raises(ValueError, match="label must be high/low"):
        validation.load_cases(bad)


def test_stratified_sample_balances_labels() -> None:
    rows = [
        {"subdimension": s, "label": int(i % 4 != 0), "case_id": k, "stem": str(k)}
        for k, (s, i) in enumerate((s, i) for s in validation.SUBDIMENSIONS for i in range(20))
    ]
    sample = validation.stratified_sample(pd.DataFrame(rows), 24)
    assert len(sample) == 24
    assert sample.groupby("subdimension")["label"].agg(["size", "sum"]).values.tolist() == [[4, 2]] * 6


def test_embedding_evaluation_on_obvious_cases(tmp_path: Path) -> None:
    table, info = validation.run(_labelled_file(tmp_path), "embedding", n_boot=50)
    overall = table.set_index("subdimension").loc["overall"]
    assert info["cases"] == 12 and info["evaluated_cases"] == 12  # an external file is scored whole
    assert info["evaluated"] == "every case"
    assert info["calibration"]["fitted_on"].startswith("dev rows of projective_labelled.csv")  # as shipped
    assert overall["roc_auc"] >= 0.85  # 0.889 measured: 32 of 36 high/low pairs ranked right
    assert overall["roc_auc"] > overall["majority_roc_auc"]


def test_defaults_do_not_mislead(tmp_path: Path) -> None:
    path = _labelled_file(tmp_path)
    with pytest.raises(ValueError, match="--calibration fit needs a training part"):
        validation.run(path, "embedding", calibration="fit")
    table, info = validation.run(path, "embedding", part="heldout", calibration="fit", n_boot=50)
    assert info["evaluated_cases"] == info["heldout_cases"] < 12
    assert "training part of cases.json" in info["calibration"]["fitted_on"]  # the fit is stated
    with pytest.raises(ValueError, match="'split' column"):
        validation.run(path, "embedding", split="test")
    with pytest.raises(ValueError, match="labelled file not found"):
        validation.load_cases(tmp_path / "missing.json")


def test_a_mismatched_calibration_is_an_error(tmp_path: Path) -> None:
    scorer = EmbeddingScorer(calibration=None)
    assert scorer.calibration.fitted_on.startswith("not fitted")  # asked for, and said so
    other = save_calibration(
        scorer.calibration.__class__(5.0, 0.0, "descriptions", scorer.descriptions.version), tmp_path / "c.yaml"
    )
    with pytest.raises(ConfigError, match="field 'method' is 'descriptions'"):
        EmbeddingScorer(calibration=other)
    with pytest.raises(ConfigError, match="calibration file not found"):
        EmbeddingScorer(calibration=tmp_path / "none.yaml")


def test_cli_reports_errors_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        scorer_eval.main(["--cases", str(tmp_path / "nothing.csv"), "--scorer", "embedding"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "nothing.csv: labelled file not found" in err and "\n" not in err


def test_delong_and_hanley_mcneil() -> None:
    # Hanley & McNeil (1982), Table 1: CT ratings of 58 normal and 51 abnormal patients; AUC 0.893, SE 0.032
    normal = np.repeat([1, 2, 3, 4, 5], [33, 6, 6, 11, 2])
    abnormal = np.repeat([1, 2, 3, 4, 5], [3, 2, 2, 11, 33])
    y = np.r_[np.zeros(58, int), np.ones(51, int)]
    score = np.r_[normal, abnormal].astype(float)
    auc, var = validation.delong_variance(y, score)
    assert auc == pytest.approx(roc_auc_score(y, score)) and round(auc, 3) == 0.893
    assert np.sqrt(validation.hanley_mcneil_variance(auc, 51, 58)) == pytest.approx(0.032, abs=5e-4)
    low, high, note = validation.auc_ci_delong(y, score)
    assert low < auc < high <= 1 and note == ""


def test_auc_interval_behaves_with_few_cases() -> None:
    y = np.array([1] * 12 + [0, 0])
    perfect = np.r_[np.linspace(0.6, 0.9, 12), [0.1, 0.2]]
    low, high, note = validation.auc_ci_delong(y, perfect)
    assert high == 1.0 and 0.3 < low < 0.95  # not the degenerate [1, 1]
    assert "few cases: 2" in note and "perfect separation" in note
    mixed = np.r_[np.linspace(0.2, 0.9, 12), [0.5, 0.3]]
    low, high, note = validation.auc_ci_delong(y, mixed)
    assert 0 < low < roc_auc_score(y, mixed) < high < 1
    stems = np.array([f"s{i}" for i in range(12)] + ["a", "a"])
    _, _, boot_note = validation.auc_ci_bootstrap(y, mixed, stems, n_boot=100)
    assert boot_note.startswith("few stems: 1")
    table = validation.evaluate(
        pd.DataFrame({"subdimension": "Social", "label": y, "stem": stems, "completion": "x"}), mixed
    )
    assert table["ci_note"].str.startswith("few cases").all() and (table["ci_method"] == "delong").all()


def test_delong_variance_matches_proc(tmp_path: Path) -> None:
    rscript = require_rscript()
    require_r_package("pROC")
    rng = np.random.default_rng(1)
    y = np.r_[np.ones(23, int), np.zeros(9, int)]
    score = np.round(np.r_[rng.normal(0.6, 0.2, 23), rng.normal(0.4, 0.2, 9)], 2)  # with ties
    pd.DataFrame({"y": y, "score": score}).to_csv(tmp_path / "roc.csv", index=False)
    code = (
        "suppressMessages(library(pROC)); d <- read.csv(commandArgs(TRUE)[1]); "
        "r <- roc(d$y, d$score, levels = c(0, 1), direction = '<', quiet = TRUE); "
        "cat(sprintf('%.15g %.15g', as.numeric(auc(r)), var(r, method = 'delong')))"
    )
    out = subprocess.run([rscript, "--vanilla", "-e", code, str(tmp_path / "roc.csv")], capture_output=True, text=True)
    auc_r, var_r = map(float, out.stdout.split())
    auc, var = validation.delong_variance(y, score)
    assert auc == pytest.approx(auc_r, abs=1e-12) and var == pytest.approx(var_r, rel=1e-10)


@pytest.mark.slow
@pytest.mark.skipif(not FULVA.exists(), reason="the lab's labelled FULVa set is not on this machine")
def test_embedding_scorer_clears_the_bar_on_fulva() -> None:
    """The embedding scorer on the lab's stem-hash held-out part, Platt-fitted on its training part."""
    table, info = validation.run(FULVA, "embedding", part="heldout", calibration="fit", n_boot=200)
    t = table.set_index("subdimension")
    assert info["heldout_cases"] == 240 and info["heldout_stems"] == 92 and info["evaluated_cases"] == 240
    assert t.loc["overall", "roc_auc"] >= 0.85
    assert (t["roc_auc"] >= 0.85).all()


def test_minimal_pairs_with_the_embedding_scorer() -> None:
    """Our 30 stem-controlled pairs (same stem, a high and a low completion): the completion decides."""
    pairs = paths.INSTRUMENTS / "projective_minimal_pairs.csv"
    table, info = validation.run(pairs, "embedding")
    overall = table.set_index("subdimension").loc["overall"]
    assert info["cases"] == 60 and overall["n_low"] == 30
    assert overall["roc_auc"] == pytest.approx(0.834, abs=0.01)  # reads topic better than stance


@pytest.mark.parametrize(
    ("name", "kw"),
    [("projective_minimal_pairs.csv", {}), ("projective_labelled.csv", {"split": "test"})],
)
def test_stance_scorer_meets_the_targets_on_our_test_data(name: str, kw: dict) -> None:
    """The default scorer, replaying the committed judge calls: >= 0.90 overall, >= 0.80 per sub-dimension."""
    table, info = validation.run(paths.INSTRUMENTS / name, **kw)
    t = table.set_index("subdimension")
    assert info["scorer"] == "stance" and info["invalid_cases"] == 0
    assert t.loc["overall", "roc_auc"] >= 0.90
    assert (t["roc_auc"] >= 0.80).all()
    assert t.loc["overall", "roc_auc_ci_low"] > 0.80  # DeLong, logit scale
