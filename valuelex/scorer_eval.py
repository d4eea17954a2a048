"""Validate a projective-test scorer on a labelled set of completions.

    python -m valuelex.scorer_eval --cases PATH --scorer embedding
    python -m valuelex.scorer_eval --cases PATH --scorer judge --judge-sample 48 --mode live

The labelled file has one case per row: a stem, its completion, the sub-dimension it is
labelled on, and the label high/low. Accepted: JSON (a list, or ``{"data": [...]}``, with the
fields stem|prompt, completion|answer, subdimension|value, label high/low or score 1/0), JSONL
or CSV with the same columns. The lab's FULVa set (``valuecompass_fulva_cases.json``) is read
as it is; this module never looks for it: its path is an argument.

The embedding scorer embeds the completion without its stem by default (``--context``): the
FULVa labels follow the stems, and our own instrument mixes positive and negative stems, so a
score should come from what the model wrote, not from how the stem was worded.

Split (documented, fixed): a case is held out when the SHA-256 of ``SALT | normalised stem``
is 0 mod 3, so about a third of the *stems* are held out with all their completions. The
held-out part therefore has only stems the calibration never saw (the FULVa labels depend
mostly on the stem, so a split by case or by model would leak them). The embedding scorer's
Platt calibration is fitted on the training part only; its exemplar sentences were written by
us and are not fitted. Figures are reported on the held-out part (``--part`` changes that).
The judge is not fitted; it scores a stratified sample of the held-out part (it is slow locally).

Metrics per sub-dimension and overall: accuracy, balanced accuracy, ROC AUC (with a stem-level
bootstrap 95% CI), macro-F1, and the majority-class baseline (the training part's majority
label for every case). A case is predicted high when its score is >= 0.5; invalid judge
answers are scored 0.5 (neutral) and counted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, roc_auc_score

from . import paths
from .figures import save_table
from .projective import (
    CALIBRATION_FILE,
    DEFAULT_JUDGE,
    SUBDIMENSIONS,
    EmbeddingScorer,
    JudgeScorer,
    canonical_subdimension,
    save_calibration,
)

SALT = "valuelex-projective-split-v1"
_FIELDS = {
    "stem": ("stem", "prompt"),
    "completion": ("completion", "answer", "text"),
    "subdimension": ("subdimension", "value", "sub_dimension"),
}


def load_cases(path: str | Path) -> pd.DataFrame:
    """Read a labelled file into columns stem, completion, subdimension, label (1 = high, 0 = low), model."""
    path = Path(path)
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
    out["subdimension"] = out["subdimension"].map(canonical_subdimension)
    out["model"] = raw["model"].astype(str) if "model" in raw.columns else ""
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


def auc_ci(
    y: np.ndarray, score: np.ndarray, groups: np.ndarray, n_boot: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """95% bootstrap CI of ROC AUC, resampling groups (stems) with replacement."""
    rng = np.random.default_rng(seed)
    uniq = np.unique(groups)
    members = [np.flatnonzero(groups == g) for g in uniq]
    values = []
    for _ in range(n_boot):
        idx = np.concatenate([members[i] for i in rng.integers(0, len(uniq), len(uniq))])
        if len(np.unique(y[idx])) == 2:
            values.append(roc_auc_score(y[idx], score[idx]))
    if not values:
        return float("nan"), float("nan")
    lo, hi = np.quantile(values, [0.025, 0.975])
    return float(lo), float(hi)


def evaluate(cases: pd.DataFrame, score: np.ndarray, majority: int = 1, n_boot: int = 1000) -> pd.DataFrame:
    """Metrics per sub-dimension and overall, with the majority-class baseline beside them."""
    rows = []
    score = np.asarray(score, dtype=float)
    for name in (*SUBDIMENSIONS, "overall"):
        mask = np.ones(len(cases), bool) if name == "overall" else (cases["subdimension"] == name).to_numpy()
        if not mask.any():
            continue
        y = cases["label"].to_numpy()[mask]
        row: dict[str, Any] = {"subdimension": name, **metrics(y, score[mask])}
        row["roc_auc_ci_low"], row["roc_auc_ci_high"] = auc_ci(
            y, score[mask], cases["stem"].map(normalise_stem).to_numpy()[mask], n_boot=n_boot
        )
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


def run(
    cases_path: str | Path,
    scorer: str = "embedding",
    *,
    method: str = "exemplars",
    context: str = "completion",
    calibration: str = "fit",
    part: str = "heldout",
    judge_model: str = DEFAULT_JUDGE,
    judge_sample: int = 48,
    mode: str = "replay",
    store_root: Path | None = None,
    n_boot: int = 1000,
    write_calibration: Path | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Evaluate one scorer; returns the metrics table and facts about the run (split sizes, counts)."""
    cases = load_cases(cases_path)
    test = held_out(cases["stem"])
    train = cases[~test]
    majority = int(train["label"].mean() >= 0.5)
    chosen = {"heldout": cases[test], "train": train, "all": cases}[part]
    info: dict[str, Any] = {
        "cases": len(cases),
        "stems": int(cases["stem"].map(normalise_stem).nunique()),
        "train_cases": len(train),
        "heldout_cases": int(test.sum()),
        "heldout_stems": int(cases.loc[test, "stem"].map(normalise_stem).nunique()),
        "part": part,
        "majority_label": "high" if majority else "low",
    }
    if scorer == "embedding":
        if calibration == "shipped":
            emb = EmbeddingScorer(method=method, context=context)
        else:
            emb = EmbeddingScorer(calibration=None, method=method, context=context)
            emb.fit_calibration(
                train,
                train["label"],
                fitted_on=f"training part of {Path(cases_path).name} (split {SALT}, stems not held out)",
            )
        cal = emb.calibration
        info["calibration"] = {"slope": cal.slope, "intercept": cal.intercept, "fitted_on": cal.fitted_on}
        if write_calibration:
            note = "Regenerate: " + " ".join(_command(cases_path, method, context))
            save_calibration(cal, write_calibration, note=note)
        scored = emb.score(chosen)
        score = scored["score"].to_numpy()
    elif scorer == "judge":
        chosen = stratified_sample(chosen, judge_sample) if judge_sample else chosen
        judge = JudgeScorer(judge_model, mode=mode, store_root=store_root or paths.raw_store("judge_eval"))
        scored = judge.score(chosen)
        info["judge_model"] = judge_model
        info["judge_status"] = scored["status"].value_counts().to_dict()
        info["judge_usage"] = {k: dict(v) for k, v in judge.runner.report.per_model.items()}
        score = scored["score"].fillna(0.5).to_numpy()
    else:
        raise ValueError(f"scorer must be embedding or judge, got {scorer!r}")
    info["evaluated_cases"] = len(chosen)
    return evaluate(chosen, score, majority=majority, n_boot=n_boot), info


def _command(cases_path: str | Path, method: str, context: str) -> list[str]:
    return ["python", "-m", "valuelex.scorer_eval", "--cases", f"PATH/TO/{Path(cases_path).name}", "--scorer", "embedding",
            "--method", method, "--context", context, "--write-calibration",
            str(CALIBRATION_FILE.relative_to(paths.ROOT))]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Validate a projective scorer on labelled completions.")
    parser.add_argument("--cases", required=True, help="labelled file (JSON, JSONL or CSV)")
    parser.add_argument("--scorer", default="embedding", choices=["embedding", "judge"])
    parser.add_argument("--method", default="exemplars", choices=["exemplars", "descriptions"],
                        help="embedding scorer: exemplar sentences (default) or the one-line descriptions (baseline)")  # fmt: skip
    parser.add_argument("--context", default="completion", choices=["completion", "stem+completion"],
                        help="embedding scorer: embed the completion alone (default) or with its stem")  # fmt: skip
    parser.add_argument("--calibration", default="fit", choices=["fit", "shipped"],
                        help="embedding scorer: fit Platt scaling on the training part, or use the shipped file")  # fmt: skip
    parser.add_argument("--part", default="heldout", choices=["heldout", "train", "all"])
    parser.add_argument("--judge-model", default=DEFAULT_JUDGE)
    parser.add_argument("--judge-sample", type=int, default=48, help="cases the judge scores (0 = all of --part)")
    parser.add_argument("--mode", default="replay", choices=["replay", "live"], help="judge calls: replay or live")
    parser.add_argument("--store", type=Path, default=None, help="judge store (default data/raw/judge_eval)")
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--write-calibration", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None, help="folder for the metrics table (CSV + Markdown)")
    args = parser.parse_args(argv)
    table, info = run(
        args.cases,
        args.scorer,
        method=args.method,
        context=args.context,
        calibration=args.calibration,
        part=args.part,
        judge_model=args.judge_model,
        judge_sample=args.judge_sample,
        mode=args.mode,
        store_root=args.store,
        n_boot=args.n_boot,
        write_calibration=args.write_calibration,
    )
    print(json.dumps(info, indent=1, default=str))
    shown = table[["subdimension", "n", "n_low", "accuracy", "balanced_accuracy", "roc_auc", "roc_auc_ci_low",
                   "roc_auc_ci_high", "macro_f1", "majority_accuracy", "majority_macro_f1"]]  # fmt: skip
    print(shown.to_markdown(index=False, floatfmt=".3f"))
    if args.out:
        name = f"scorer_eval_{args.scorer}"
        if args.scorer == "embedding":
            name += f"_{args.method}_{args.context.replace('+', '_')}"
        save_table(table, name, folder=args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
