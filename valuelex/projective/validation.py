"""Validating a projective-test scorer on a labelled set of completions: the computation behind notebook 06's
validation (``stages.projective``) and the ``valuelex scorer-eval`` command (:mod:`valuelex.app.scorer_eval`).

The labelled file has one case per row: a stem, its completion, the sub-dimension it is
labelled on, and the label high/low. Accepted: JSON (a list, or ``{"data": [...]}``, with the
fields stem|prompt, completion|answer, subdimension|value, label high/low or score 1/0), JSONL
or CSV with the same columns, optionally a ``split`` column (dev/test, as in our own
``configs/instruments/projective_labelled.csv``). The lab's FULVa set
(``valuecompass_fulva_cases.json``) is read as it is; this module never looks for it: its path is
an argument.

**Defaults that do not mislead.** Every case of the file is scored (``part="all"``) with the
scorer as shipped (``calibration="shipped"``): the default scorer's head and the embedding
scorer's Platt numbers were fitted on our own development completions, never on the file under
evaluation. A calibration that does not match the scorer is an error, never a silent fallback.
``calibration="fit"`` fits on a stated training part: the rows of ``split="dev"`` when a test
split is evaluated, or the stem-hash training part with ``part="heldout"``.

**The stem split** (``part="heldout"|"train"``, for files whose labels follow their stems, like
FULVa's): a case is held out when the SHA-256 of ``SALT | normalised stem`` is 0 mod 3, so about a
third of the *stems* are held out with all their completions.

**Metrics** per sub-dimension and overall: accuracy, balanced accuracy, ROC AUC with a 95% CI,
macro-F1, and the majority-class baseline. The CI is DeLong's on the logit scale by default
(``ci="delong"``: it behaves with few cases and at AUC = 1; rows with fewer than
``MIN_PER_CLASS`` cases in a class are flagged); ``ci="bootstrap"`` resamples stems instead
(it respects the clustering of completions within stems; rows with few stems are flagged). A case
is predicted high when its score is >= 0.5; invalid judge answers are scored 0.5 (neutral) and
counted.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, roc_auc_score

from ..core import paths
from ..core.display import Report
from ..llm.runstore import open_store
from ..llm.store import ResponseStore
from .embedding import EmbeddingScorer, save_calibration
from .instrument import (
    CALIBRATION_FILE,
    DEFAULT_JUDGE,
    JUDGE_STUDY,
    STANCE_CALIBRATION_FILE,
    SUBDIMENSIONS,
    canonical_subdimension,
)
from .judge import JudgeScorer, LogprobJudge
from .scorers import DEFAULT_SCORER, SCORERS, StanceScorer, save_stance_calibration

SALT = "valuelex-projective-split-v1"
#: Fewer cases (DeLong) or stems (bootstrap) than this in a class and the AUC's CI is flagged.
MIN_PER_CLASS = 10
PARTS = ("all", "heldout", "train")
_FIELDS = {
    "stem": ("stem", "prompt"),
    "completion": ("completion", "answer", "text"),
    "subdimension": ("subdimension", "value", "sub_dimension"),
}


def load_cases(path: str | Path) -> pd.DataFrame:
    """Read a labelled file into columns stem, completion, subdimension, label (1 = high, 0 = low), model."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: labelled file not found")
    if path.suffix == ".csv":
        raw = pd.read_csv(path)
    elif path.suffix == ".jsonl":
        raw = pd.read_json(path, lines=True)
    else:
        data = json.loads(path.read_text(encoding="utf-8"))
        raw = pd.DataFrame(data["data"] if isinstance(data, dict) else data)
    out = pd.DataFrame(index=raw.index)
    for field, names in _FIELDS.items():
        name = next((n for n in names if n in raw.columns), None)
        if name is None:
            raise ValueError(f"{path}: no column for {field} (expected one of {', '.join(names)})")
        out[field] = raw[name].astype(str)
    if "label" in raw.columns:
        labels = raw["label"].astype(str).str.strip().str.lower()
        bad = ~labels.isin(["high", "low", "1", "0"])
        if bad.any():
            raise ValueError(
                f"{path}: label must be high/low (or 1/0); row {int(bad.idxmax())} has {raw['label'][bad.idxmax()]!r}"
            )
        out["label"] = labels.isin(["high", "1"]).astype(int)
    elif "score" in raw.columns:
        out["label"] = raw["score"].astype(int)
    else:
        raise ValueError(f"{path}: no label column (label high/low or score 1/0)")
    try:
        out["subdimension"] = out["subdimension"].map(canonical_subdimension)
    except ValueError as exc:
        raise ValueError(f"{path}: field 'subdimension': {exc}") from None
    out["model"] = raw["model"].fillna("").astype(str) if "model" in raw.columns else ""
    if "split" in raw.columns:
        out["split"] = raw["split"].astype(str).str.strip().str.lower()
    out["case_id"] = np.arange(len(out))
    return out.reset_index(drop=True)


def normalise_stem(stem: str) -> str:
    return " ".join(stem.lower().replace("…", "...").rstrip(". ").split())


def held_out(stems: pd.Series, salt: str = SALT, folds: int = 3) -> np.ndarray:
    """True for cases whose stem hashes to fold 0 of ``folds`` (about 1/folds of the stems)."""
    digest = stems.map(lambda s: int(hashlib.sha256(f"{salt}|{normalise_stem(s)}".encode()).hexdigest(), 16) % folds)
    return (digest == 0).to_numpy()


def metrics(y: np.ndarray, score: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, balanced accuracy, ROC AUC and macro-F1 of scores against 0/1 labels."""
    y = np.asarray(y, dtype=int)
    score = np.asarray(score, dtype=float)
    pred = (score >= threshold).astype(int)
    both = len(np.unique(y)) == 2
    return {
        "n": int(len(y)),
        "n_high": int(y.sum()),
        "n_low": int((1 - y).sum()),
        "accuracy": float(accuracy_score(y, pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y, pred)) if both else float("nan"),
        "roc_auc": float(roc_auc_score(y, score)) if both else float("nan"),
        "macro_f1": float(f1_score(y, pred, average="macro", labels=[0, 1], zero_division=0)),
    }


def delong_variance(y: np.ndarray, score: np.ndarray) -> tuple[float, float]:
    """ROC AUC and its DeLong (1988) variance, from the placement values (ties count one half)."""
    y = np.asarray(y, dtype=int)
    score = np.asarray(score, dtype=float)
    pos, neg = score[y == 1], score[y == 0]
    m, n = len(pos), len(neg)
    if m == 0 or n == 0:
        return float("nan"), float("nan")
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    auc = float(psi.mean())
    s10 = float(np.var(v10, ddof=1)) if m > 1 else 0.0
    s01 = float(np.var(v01, ddof=1)) if n > 1 else 0.0
    return auc, s10 / m + s01 / n


def hanley_mcneil_variance(auc: float, n_pos: int, n_neg: int) -> float:
    """Hanley & McNeil's (1982) variance of an AUC from its value and the two group sizes."""
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    return (auc * (1 - auc) + (n_pos - 1) * (q1 - auc**2) + (n_neg - 1) * (q2 - auc**2)) / (n_pos * n_neg)


def auc_ci_delong(y: np.ndarray, score: np.ndarray, level: float = 0.95) -> tuple[float, float, str]:
    """A CI of ROC AUC that behaves with few cases: DeLong's variance on the logit scale.

    The interval is symmetric in logit(AUC), so it stays inside [0, 1] and is not cut off at 1.
    When the two groups are perfectly separated (AUC 0 or 1, DeLong variance 0), the variance is
    Hanley & McNeil's at AUC = 1 - 1/(2 n_pos n_neg) (half a discordant pair), and the bound on the
    separated side is the AUC itself. Returns (low, high, note); the note flags fewer than
    ``MIN_PER_CLASS`` cases in a class, where no interval is trustworthy.
    """
    y = np.asarray(y, dtype=int)
    n_pos, n_neg = int(y.sum()), int((1 - y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan"), float("nan"), "one class only"
    auc, var = delong_variance(y, score)
    notes = []
    z = stats.norm.ppf(1 - (1 - level) / 2)
    half = 1 / (2 * n_pos * n_neg)
    if var <= 0 or auc in (0.0, 1.0):
        shown = min(max(auc, half), 1 - half)
        var = hanley_mcneil_variance(shown, n_pos, n_neg)
        notes.append("perfect separation: Hanley-McNeil variance")
    else:
        shown = auc
    logit = np.log(shown / (1 - shown))
    se = np.sqrt(var) / (shown * (1 - shown))
    low, high = (1 / (1 + np.exp(-(logit + s * z * se))) for s in (-1, 1))
    if auc == 1.0:
        high = 1.0
    if auc == 0.0:
        low = 0.0
    if min(n_pos, n_neg) < MIN_PER_CLASS:
        notes.insert(0, f"few cases: {min(n_pos, n_neg)} in the smaller class (< {MIN_PER_CLASS})")
    return float(low), float(high), "; ".join(notes)


def auc_ci_bootstrap(
    y: np.ndarray, score: np.ndarray, groups: np.ndarray, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float, str]:
    """Percentile bootstrap CI of ROC AUC, resampling groups (stems) with replacement.

    It respects that the completions of one stem are not independent, but with few stems per
    class it is degenerate ([0, 1] or [0.78, 1.00] from 2-5 stems): such rows are flagged.
    """
    rng = np.random.default_rng(seed)
    uniq = np.unique(groups)
    members = [np.flatnonzero(groups == g) for g in uniq]
    values = []
    for _ in range(n_boot):
        idx = np.concatenate([members[i] for i in rng.integers(0, len(uniq), len(uniq))])
        if len(np.unique(y[idx])) == 2:
            values.append(roc_auc_score(y[idx], score[idx]))
    if not values:
        return float("nan"), float("nan"), "one class only"
    lo, hi = np.quantile(values, [(1 - level) / 2, 1 - (1 - level) / 2])
    stems_low = len(np.unique(groups[np.asarray(y) == 0]))
    stems_high = len(np.unique(groups[np.asarray(y) == 1]))
    few = min(stems_low, stems_high)
    note = f"few stems: {few} in the smaller class (< {MIN_PER_CLASS})" if few < MIN_PER_CLASS else ""
    return float(lo), float(hi), note


def evaluate(
    cases: pd.DataFrame, score: np.ndarray, majority: int = 1, n_boot: int = 1000, ci: str = "delong"
) -> pd.DataFrame:
    """Metrics per sub-dimension and overall, with the AUC's CI and the majority-class baseline beside them."""
    if ci not in ("delong", "bootstrap"):
        raise ValueError(f"ci must be delong or bootstrap, got {ci!r}")
    rows = []
    score = np.asarray(score, dtype=float)
    for name in (*SUBDIMENSIONS, "overall"):
        mask = np.ones(len(cases), bool) if name == "overall" else (cases["subdimension"] == name).to_numpy()
        if not mask.any():
            continue
        y = cases["label"].to_numpy()[mask]
        row: dict[str, Any] = {"subdimension": name, **metrics(y, score[mask])}
        if ci == "delong":
            low, high, note = auc_ci_delong(y, score[mask])
        else:
            stems = cases["stem"].map(normalise_stem).to_numpy()[mask]
            low, high, note = auc_ci_bootstrap(y, score[mask], stems, n_boot=n_boot)
        row.update(roc_auc_ci_low=low, roc_auc_ci_high=high, ci_method=ci, ci_note=note)
        base = metrics(y, np.full(len(y), float(majority)))
        row.update({f"majority_{k}": base[k] for k in ("accuracy", "balanced_accuracy", "macro_f1")})
        row["majority_roc_auc"] = 0.5
        rows.append(row)
    return pd.DataFrame(rows)


def stratified_sample(cases: pd.DataFrame, n: int, seed: int = 0) -> pd.DataFrame:
    """About n cases, the same number per sub-dimension, half of them low where there are enough lows."""
    per = max(2, n // len(SUBDIMENSIONS))
    rng = np.random.default_rng(seed)
    parts = []
    for name in SUBDIMENSIONS:
        g = cases[cases["subdimension"] == name]
        low, high = g[g["label"] == 0], g[g["label"] == 1]
        n_low = min(len(low), per // 2)
        n_high = min(len(high), per - n_low)
        parts.append(low.iloc[rng.permutation(len(low))[:n_low]])
        parts.append(high.iloc[rng.permutation(len(high))[:n_high]])
    return pd.concat(parts).sort_values("case_id").reset_index(drop=True)


def select(
    cases: pd.DataFrame, part: str = "all", split: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame | None, str]:
    """The cases to evaluate, the training cases a ``--calibration fit`` would use (or None), and a description."""
    if part not in PARTS:
        raise ValueError(f"part must be one of {', '.join(PARTS)}, got {part!r}")
    chosen, train, what = cases, None, "every case"
    if split is not None:
        if "split" not in cases.columns:
            raise ValueError("--split needs a 'split' column in the labelled file (dev/test)")
        if split not in set(cases["split"]):
            raise ValueError(f"no case has split {split!r} (the file has: {', '.join(sorted(set(cases['split'])))})")
        chosen = cases[cases["split"] == split]
        train = cases[cases["split"] == "dev"]
        what = f"split {split!r}" + (" (a fit on it is in-sample)" if split == "dev" else "")
    if part != "all":
        test = held_out(chosen["stem"])
        train = chosen[~test]
        chosen = chosen[test] if part == "heldout" else chosen[~test]
        what += f", stem-hash {part} part (split {SALT})"
    return chosen.reset_index(drop=True), train, what


def _judge_store(cases_path: Path, raw: Path, base: Path | None) -> ResponseStore:
    """Judge calls on our own labelled files are part of the dataset; on any other file they stay local."""
    inside = paths.INSTRUMENTS.resolve() in Path(cases_path).resolve().parents
    study = JUDGE_STUDY if inside else "judge_eval"
    return open_store(Path(raw) / study, Path(base) / study if base is not None else None)


def run(
    cases_path: str | Path,
    scorer: str = DEFAULT_SCORER,
    *,
    part: str = "all",
    split: str | None = None,
    calibration: str = "shipped",
    method: str = "exemplars",
    context: str = "completion",
    judge_model: str = DEFAULT_JUDGE,
    judge_sample: int = 0,
    mode: str = "replay",
    store_root: Path | None = None,
    raw: Path = paths.DATASET,
    base: Path | None = None,
    ci: str = "delong",
    n_boot: int = 1000,
    write_calibration: Path | None = None,
    progress: bool = False,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Evaluate one scorer; returns the metrics table and facts about the run (what was scored, how).

    The judge's answers come from ``store_root`` when given, else from the run's response store
    ``raw`` (over its read-only ``base``): the judge study for our own labelled files, ``judge_eval``
    for any other file.
    """
    cases_path = Path(cases_path)
    cases = load_cases(cases_path)
    if calibration not in ("shipped", "fit"):
        raise ValueError(f"calibration must be shipped or fit, got {calibration!r}")
    chosen, train, what = select(cases, part, split)
    if judge_sample:  # any scorer, so that the embedding scorer can be compared on the judge's sample
        chosen = stratified_sample(chosen, judge_sample)
        what += f", stratified sample of {len(chosen)} cases"
    majority = int((train if train is not None else chosen)["label"].mean() >= 0.5)
    info: dict[str, Any] = {
        "file": cases_path.name,
        "cases": len(cases),
        "stems": int(cases["stem"].map(normalise_stem).nunique()),
        "evaluated": what,
        "evaluated_cases": len(chosen),
        "evaluated_stems": int(chosen["stem"].map(normalise_stem).nunique()),
        "heldout_cases": int(held_out(cases["stem"]).sum()),
        "heldout_stems": int(cases.loc[held_out(cases["stem"]), "stem"].map(normalise_stem).nunique()),
        "scorer": scorer,
        "majority_label": "high" if majority else "low",
    }
    if calibration == "fit" and (train is None or train.empty):
        raise ValueError(
            "--calibration fit needs a training part: --part heldout (fits on the stem-hash training part) "
            "or --split test|dev (fits on the file's dev rows)"
        )
    store = open_store(store_root) if store_root else _judge_store(cases_path, raw, base)
    fitted_on = f"{'dev rows' if split else 'training part'} of {cases_path.name}" + (
        f" (split {SALT}, stems not held out)" if part != "all" else ""
    )
    if scorer == "embedding":
        emb = EmbeddingScorer(
            calibration=None if calibration == "fit" else CALIBRATION_FILE, method=method, context=context
        )
        if calibration == "fit":
            emb.fit_calibration(train, train["label"], fitted_on=fitted_on)
        cal = emb.calibration
        info["calibration"] = {"slope": cal.slope, "intercept": cal.intercept, "fitted_on": cal.fitted_on}
        if write_calibration:
            save_calibration(
                cal, write_calibration, note="Regenerate: " + " ".join(_command(cases_path, scorer, part, split))
            )
        scored = emb.score(chosen)
    elif scorer == "stance":
        stance = StanceScorer(
            judge_model,
            calibration=None if calibration == "fit" else STANCE_CALIBRATION_FILE,
            mode=mode,
            store=store,
            progress=progress,
        )
        if calibration == "fit":
            stance.fit(train, train["label"], fitted_on=fitted_on)
        info["calibration"] = {k: v for k, v in vars(stance.calibration).items()}
        if write_calibration:
            note = "Regenerate: " + " ".join(_command(cases_path, scorer, part, split))
            save_stance_calibration(stance.calibration, write_calibration, note=note)
        scored = stance.score(chosen)
        info["judge_usage"] = {k: dict(v) for k, v in stance.runner.report.per_model.items()}
    elif scorer in ("judge", "logprob"):
        if calibration == "fit":
            raise ValueError(f"--calibration fit: the {scorer} scorer has nothing to fit (its score is the rating)")
        cls = JudgeScorer if scorer == "judge" else LogprobJudge
        judge = cls(judge_model, mode=mode, store=store, progress=progress)
        scored = judge.score(chosen)
        info["calibration"] = "none: the judge's rating mapped to (rating - 1) / 4"
        info["judge_usage"] = {k: dict(v) for k, v in judge.runner.report.per_model.items()}
    else:
        raise ValueError(f"scorer must be one of {', '.join(SCORERS)}, got {scorer!r}")
    if scorer != "embedding":
        info["judge_model"] = judge_model
        info["status"] = scored["status"].value_counts().to_dict()
    score = scored["score"].fillna(0.5).to_numpy()
    info["invalid_cases"] = int((~scored["valid"].astype(bool)).sum())
    return evaluate(chosen, score, majority=majority, n_boot=n_boot, ci=ci), info


@dataclass(repr=False)  # a console shows the report, not the dataclass
class ScorerValidation(Report):
    """One scorer's validation on one labelled file: what was scored, and the metrics table."""

    table: pd.DataFrame
    info: dict[str, Any]

    @property
    def title(self) -> str:  # type: ignore[override]
        return f"Scorer validation: {self.info['scorer']} on {self.info['file']} ({self.info['evaluated']})"

    def sections(self) -> list[tuple[str, Any]]:
        facts = {k: self.info[k] for k in ("evaluated_cases", "evaluated_stems", "majority_label", "invalid_cases")}
        columns = ["subdimension", "n", "n_low", "accuracy", "balanced_accuracy", "roc_auc", "roc_auc_ci_low",
                   "roc_auc_ci_high", "macro_f1", "majority_accuracy", "ci_note"]  # fmt: skip
        return [("", facts), ("Metrics (ROC AUC with a 95% CI)", self.table[columns].set_index("subdimension"))]

    def metrics(self) -> dict[str, Any]:
        t = self.table.set_index("subdimension")
        return {
            "roc_auc": {k: round(float(v), 4) for k, v in t["roc_auc"].items()},
            "cases": int(t.loc["overall", "n"]),
        }


def validate(cases_path: str | Path, scorer: str = DEFAULT_SCORER, **kw: Any) -> ScorerValidation:
    """``run`` as a report that shows itself (notebooks)."""
    return ScorerValidation(*run(cases_path, scorer, **kw))


def _command(cases_path: Path, scorer: str, part: str, split: str | None) -> list[str]:
    where = str(cases_path) if paths.ROOT in Path(cases_path).resolve().parents else f"PATH/TO/{Path(cases_path).name}"
    args = ["python", "-m", "valuelex.app.scorer_eval", "--cases", where, "--scorer", scorer, "--calibration", "fit"]
    args += ["--part", part] + (["--split", split] if split else [])
    target = CALIBRATION_FILE if scorer == "embedding" else STANCE_CALIBRATION_FILE
    return [*args, "--write-calibration", str(target.relative_to(paths.ROOT))]
