"""The scorer interface, the default scorer, and how to make any of them by name.

``StanceScorer`` (the default) reads the stance of a completion with two signals and a small
supervised head: the log-probability judge's expected rating (what the completion *says* about
the value, read by an LLM) and the embedding scorer's high-minus-low contrast (which topic it is
about). P(high) = sigmoid(intercept + w_judge * (E[rating] - 3) + w_embedding * contrast); the three
numbers are fitted on *our* labelled development completions (``configs/instruments/
projective_labelled.csv``, split ``dev``), never on the lab's data, and stored in
``configs/instruments/stance_calibration.yaml`` with what they were fitted on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import yaml

from ..core.display import Report
from ..core.errors import ConfigError
from ..llm.store import ResponseStore
from .embedding import EmbeddingScorer
from .instrument import DEFAULT_JUDGE, STANCE_CALIBRATION_FILE
from .judge import JudgeScorer, LogprobJudge

SCORERS = ("stance", "embedding", "logprob", "judge")
#: The scorer the notebooks and the evaluation use unless told otherwise.
DEFAULT_SCORER = "stance"
#: Rating the judge's expected score is centred on (the rubric's "says nothing either way").
NEUTRAL_RATING = 3.0


class Scorer(Protocol):
    """Scores cases (columns ``stem``, ``completion``, ``subdimension``) in [0, 1]: 1 = shows it clearly."""

    name: str

    def score(self, cases: pd.DataFrame) -> pd.DataFrame:
        """``cases`` plus ``score`` (float, NaN when invalid), ``valid`` (bool), ``status``, ``rationale``."""
        ...


@dataclass(frozen=True)
class StanceCalibration:
    """The stance scorer's head: P(high) = sigmoid(intercept + w_judge * (E - 3) + w_embedding * contrast)."""

    intercept: float
    w_judge: float
    w_embedding: float
    judge_model: str
    rubric_version: str
    descriptions_version: str
    fitted_on: str
    n_cases: int

    def apply(self, judge_expected: np.ndarray, contrast: np.ndarray) -> np.ndarray:
        z = self.intercept + self.w_judge * (np.asarray(judge_expected) - NEUTRAL_RATING)
        return 1.0 / (1.0 + np.exp(-(z + self.w_embedding * np.asarray(contrast))))


def load_stance_calibration(path: str | Path = STANCE_CALIBRATION_FILE) -> StanceCalibration:
    path = Path(path)
    if not path.exists():
        raise ConfigError(
            f"{path}: the stance scorer's head is missing (fit it with python -m valuelex.app.scorer_eval)"
        )
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    missing = [k for k in StanceCalibration.__dataclass_fields__ if k not in data]
    if missing:
        raise ConfigError(f"{path}: missing required field {missing[0]!r}")
    return StanceCalibration(**{k: data[k] for k in StanceCalibration.__dataclass_fields__})


def save_stance_calibration(calibration: StanceCalibration, path: str | Path, note: str = "") -> Path:
    path = Path(path)
    header = "# The stance scorer's head, written by valuelex.app.scorer_eval (do not edit).\n"
    header += "".join(f"# {line}\n" for line in note.splitlines())
    path.write_text(header + yaml.safe_dump(asdict(calibration), sort_keys=False), encoding="utf-8")
    return path


class StanceScorer:
    """The default scorer: the log-probability judge and the embedding contrast, combined by a fitted head.

    A case is invalid (``valid = False``, left out of averages) when the judge's answer is
    off-scale; the embedding contrast alone is never substituted for it.
    """

    name = "stance"

    def __init__(
        self,
        judge_model: str = DEFAULT_JUDGE,
        *,
        calibration: StanceCalibration | str | Path | None = STANCE_CALIBRATION_FILE,
        mode: str = "replay",
        store: ResponseStore,
        progress: bool = True,
        embedding: EmbeddingScorer | None = None,
    ):
        self.embedding = embedding or EmbeddingScorer(calibration=None)
        self.judge = LogprobJudge(judge_model, mode=mode, store=store, progress=progress)
        if isinstance(calibration, (str, Path)):
            path = Path(calibration)
            calibration = load_stance_calibration(path)
            for name, wanted in (
                ("judge_model", judge_model),
                ("rubric_version", self.judge.rubrics.logprob_version),
                ("descriptions_version", self.embedding.descriptions.version),
            ):
                if str(getattr(calibration, name)) != str(wanted):
                    raise ConfigError(
                        f"{path}: field {name!r} is {getattr(calibration, name)!r} but the scorer uses {wanted!r}; "
                        "refit the head (python -m valuelex.app.scorer_eval ... --calibration fit --write-calibration)"
                    )
        self.calibration = calibration

    @property
    def runner(self) -> Any:
        return self.judge.runner

    def features(self, cases: pd.DataFrame, stored_only: bool = False) -> pd.DataFrame:
        """The judge's verdicts plus the embedding contrast (column ``contrast``) of every case."""
        judged = self.judge.score(cases, stored_only=stored_only)
        judged["contrast"] = self.embedding.raw(cases) if len(cases) else np.zeros(0)
        return judged

    def fit(self, cases: pd.DataFrame, labels: Sequence[int], fitted_on: str) -> StanceCalibration:
        """Fit the head (logistic regression, lightly regularised) on labelled cases and use it from now on."""
        from sklearn.linear_model import LogisticRegression

        feats = self.features(cases)
        ok = feats["valid"].to_numpy()
        x = np.column_stack([feats["judge_expected"] - NEUTRAL_RATING, feats["contrast"]])[ok]
        y = np.asarray(labels, dtype=int)[ok]
        clf = LogisticRegression(C=10.0, max_iter=10_000).fit(x, y)
        self.calibration = StanceCalibration(
            float(clf.intercept_[0]),
            float(clf.coef_[0, 0]),
            float(clf.coef_[0, 1]),
            self.judge.judge_model,
            self.judge.rubrics.logprob_version,
            self.embedding.descriptions.version,
            fitted_on,
            int(ok.sum()),
        )
        return self.calibration

    def score(self, cases: pd.DataFrame, stored_only: bool = False) -> pd.DataFrame:
        """Score every case; ``stored_only``: cases the judge has not scored yet get status "not judged"."""
        if self.calibration is None:
            raise ConfigError("the stance scorer has no head: pass calibration=PATH or call fit() first")
        out = self.features(cases, stored_only=stored_only)
        out["score"] = np.where(
            out["valid"], self.calibration.apply(out["judge_expected"].fillna(NEUTRAL_RATING), out["contrast"]), np.nan
        )
        return out


def make_scorer(kind: str = DEFAULT_SCORER, **kw: Any) -> Scorer:
    """``stance`` (default), ``embedding``, ``logprob`` or ``judge``, with that scorer's keyword arguments."""
    if kind == "stance":
        return StanceScorer(**kw)
    if kind == "embedding":
        return EmbeddingScorer(**kw)
    if kind == "logprob":
        return LogprobJudge(**kw)
    if kind == "judge":
        return JudgeScorer(**kw)
    raise ValueError(f"scorer must be one of {', '.join(SCORERS)}, got {kind!r}")


@dataclass(repr=False)  # a console shows the report, not the dataclass
class PanelScoring(Report):
    """A panel's cases scored by the main scorer and a second one, and which of them the figures use.

    In replay mode a judge-based main scorer may not have scored every case yet (its calls are
    collected with ``python -m valuelex.projective --mode live --score logprob``, resumable). Then
    the figures use ``fallback`` -- stated here, in the notebook and in the recorded numbers, never
    silently -- and the main scorer's verdicts on the cases it has scored become the second
    opinion, so that the agreement of the two scorers is still measured.
    """

    main: str
    used: str
    coverage: float
    scored: pd.DataFrame
    second_name: str | None
    second: pd.DataFrame | None
    title: str = "Scoring of the panel's completions"

    def sections(self) -> list[tuple[str, Any]]:
        facts = {
            "cases": len(self.scored),
            "main scorer": self.main,
            f"cases the {self.main} scorer has scored": f"{self.coverage:.1%}",
            "scorer used for the scores and figures": self.used,
            "second scorer (agreement)": self.second_name or "none",
        }
        status = self.scored["status"].value_counts().rename_axis("status").to_frame("cases")
        parts: list[tuple[str, Any]] = [("", facts), (f"Status of the {self.used} scores", status)]
        if self.used != self.main:
            parts.append(
                (
                    "Note",
                    f"The {self.main} scorer has not scored every case yet, so the figures use the {self.used} "
                    f"scorer. Complete the judge calls with: python -m valuelex.projective --mode live --score logprob",
                )
            )
        return parts

    def metrics(self) -> dict[str, Any]:
        return {"main": self.main, "used": self.used, "coverage": round(self.coverage, 4), "cases": len(self.scored)}


def score_panel(
    cases: pd.DataFrame,
    scorer: str = DEFAULT_SCORER,
    second_scorer: str | None = "embedding",
    fallback: str | None = "embedding",
    *,
    judge_model: str = DEFAULT_JUDGE,
    mode: str = "replay",
    judge_store: ResponseStore,
) -> PanelScoring:
    """Score a panel's cases with ``scorer`` (and ``second_scorer``); see ``PanelScoring`` for the fallback.

    ``judge_store``: the judge's response store (a run's ``run.store(JUDGE_STUDY)``).
    """

    def make(kind: str) -> Any:
        if kind == "embedding":
            return make_scorer(kind)
        return make_scorer(kind, judge_model=judge_model, mode=mode, store=judge_store)

    main = make(scorer)
    partial = mode == "replay" and scorer != "embedding" and fallback is not None
    scored = main.score(cases, stored_only=True) if partial else main.score(cases)
    coverage = float((scored["status"] != "not judged").mean()) if len(scored) else 1.0
    if coverage < 1.0:
        judged = scored[scored["status"] != "not judged"]
        return PanelScoring(scorer, str(fallback), coverage, make(str(fallback)).score(cases), scorer, judged)
    second = make(second_scorer).score(cases) if second_scorer else None
    return PanelScoring(scorer, scorer, coverage, scored, second_scorer, second)
