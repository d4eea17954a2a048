"""Stage 06, projective value assessment (the paper's step 4): the panel completes Rotter-style sentence
stems, two scorers score every completion on the six sub-dimensions, the scorers are validated on our
labelled completions and minimal pairs, the scores' reliability is measured, and the models' scores are
compared and drawn (Figure 1(c)). Notebook ``06_projective`` narrates ``stages.projective.run(run)``; the
settings are the run's ``projective`` section (and ``mode``: the default replays the stored completions and
judge calls); the methods are :mod:`valuelex.projective` (stems, scale, judge and calibration: our choices,
the paper publishes none).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from .. import projective as pj
from ..core import paths
from ..core.display import Report
from ..llm.cards import check_run_keys
from ..llm.runner import RunReport
from ..projective import validation as scorer_validation
from ..settings import ProjectiveSettings, RunSettings
from .base import Figures, Output, Run, Stage


def _run_outputs(settings: RunSettings) -> tuple[Output, ...]:
    """The outputs of a run with these settings, in the order of ``STAGE.outputs``.

    The scored cases are named by the scorers: when the main scorer has scored every case, its cases and the
    second scorer's; in replay, a judge-based main scorer may not have yet (``pj.score_panel``), and then the
    fallback's cases and the main scorer's as the second opinion. A file written in only one of the two cases
    is optional. The validation table needs ``projective.validate``; the agreement, a second opinion.
    """
    p = settings.projective
    base = {out.name for out in STAGE.outputs if not out.optional}
    validation = {"projective_scorer_validation"} if p.validate else set()
    second = {"projective_agreement", "projective_scorer_agreement"}
    complete = base | validation | {f"projective_scored_{p.scorer}"}
    if p.second_scorer:
        complete |= {f"projective_scored_{p.second_scorer}"} | second
    outcomes = [complete]
    if settings.mode == "replay" and p.scorer != "embedding" and p.fallback_scorer is not None:
        outcomes.append(base | validation | second | {f"projective_scored_{n}" for n in (p.fallback_scorer, p.scorer)})
    possible, certain = set.union(*outcomes), set.intersection(*outcomes)
    return tuple(
        Output(out.name, out.kind, optional=out.name not in certain) for out in STAGE.outputs if out.name in possible
    )


STAGE = Stage(
    number="06",
    name="projective",
    notebook="06_projective",
    inputs=(),  # reads the stored completions and judge calls (data/raw/projective, data/raw/judge), nothing processed
    outputs=(
        Output("projective_completions", "data"),
        *(Output(f"projective_scored_{name}", "data", optional=True) for name in pj.SCORERS),  # by the run's scorers
        Output("projective_scorer_validation", "table", optional=True),  # projective.validate
        Output("projective_internal_consistency", "table"),
        Output("projective_test_retest", "table"),
        Output("projective_agreement", "table", optional=True),  # with a second opinion
        Output("projective_scores", "data"),
        Output("projective_scores", "table"),
        Output("projective_subdimension_bars", "figure"),
        Output("projective_heatmap", "figure"),
        Output("projective_scorer_agreement", "figure", optional=True),  # with a second opinion
        Output("projective_comparisons", "table"),
        Output("projective_consistency", "table"),
        Output("projective_findings", "table"),
    ),
    run_outputs=_run_outputs,
)

#: The labelled sets each scorer is validated on: (name, file, the part of it).
VALIDATION_SETS = (
    ("minimal pairs", "projective_minimal_pairs.csv", None),
    ("labelled test part", "projective_labelled.csv", "test"),
)
#: The columns of the group comparisons a reader is shown (the table has every column).
COMPARISONS_SHOWN = ["by", "measure", "test", "groups", "effect_name", "effect", "p", "p_holm"]
#: Completions shown for a feel of what is scored: these stems, the first seed, one per model.
EXAMPLE_STEMS = ["c01", "sc3", "so1"]


def auc_summary(validation: dict[tuple[str, str], scorer_validation.ScorerValidation]) -> pd.DataFrame:
    """Sub-dimensions x (scorer | labelled set): the ROC AUC of each validation."""
    return pd.DataFrame(
        {f"{n} | {part}": v.table.set_index("subdimension")["roc_auc"] for (n, part), v in validation.items()}
    )


@dataclass(repr=False)
class ProjectiveResult(Report):
    """What stage 06 computed: the instrument, the completions, the scoring by the two scorers, their
    validation, the reliability, the scores per model, the group comparisons and the paper's second-hand
    findings. Tables are attributes; figures are ``figures.<name>``; the numbers the notebook records are
    ``metrics()``."""

    settings: ProjectiveSettings
    instrument: pj.Instrument
    completions: pd.DataFrame  # data/processed/projective_completions.csv
    calls: RunReport  # the LLM layer's report: calls made, replayed, failed
    cases: pd.DataFrame  # one usable completion x one sub-dimension of its stem
    scoring: pj.PanelScoring  # the scored cases of the scorer used, and the second opinion
    validation: dict[tuple[str, str], scorer_validation.ScorerValidation]  # (scorer, labelled set); empty: not run
    reliability: pj.Reliability
    scores: pd.DataFrame  # data/processed/projective_scores.csv
    comparisons: pd.DataFrame
    consistency: pd.DataFrame
    findings_table: pd.DataFrame  # the paper's second-hand findings, measured on this panel
    figures: Figures  # subdimension_bars, heatmap, scorer_agreement (with a second opinion)

    title = "Projective value assessment"

    @property
    def stems(self) -> pd.DataFrame:
        """The instrument's stems: kind, polarity, text and the sub-dimensions each is scored on."""
        return pd.DataFrame(
            [
                {
                    "id": s.id,
                    "kind": s.kind,
                    "polarity": s.polarity,
                    "stem": s.text,
                    "targets": ", ".join(s.targets) if s.kind == "targeted" else "all six",
                }
                for s in self.instrument.stems
            ]
        )

    def instrument_note(self) -> str:
        return f"instrument version {self.instrument.version}: {len(self.instrument.stems)} stems"

    @property
    def usable(self) -> pd.DataFrame:
        """Per model: completions, the share usable and the mean length in tokens."""
        return self.completions.groupby("model", sort=False).agg(
            completions=("usable", "size"), usable=("usable", "mean"), mean_tokens=("completion_tokens", "mean")
        )

    @property
    def examples(self) -> pd.DataFrame:
        """Three completions of each model (stems ``EXAMPLE_STEMS``, the first seed)."""
        c = self.completions
        chosen = c[c["stem_id"].isin(EXAMPLE_STEMS) & (c["seed"] == c["seed"].min())]
        return chosen.drop_duplicates(["model", "stem_id"])[["model", "stem", "completion"]]

    @property
    def scored(self) -> pd.DataFrame:
        """The cases scored by the scorer the scores and figures use."""
        return self.scoring.scored

    @property
    def validation_summary(self) -> pd.DataFrame | None:
        """ROC AUC per sub-dimension of each scorer on each labelled set (None: not validated in this run)."""
        return auc_summary(self.validation).round(3) if self.validation else None

    @property
    def main_validation(self) -> scorer_validation.ScorerValidation | None:
        """The main scorer on the minimal pairs, in full (None: not validated in this run)."""
        return self.validation.get((self.settings.scorer, "minimal pairs"))

    @property
    def validation_shown(self) -> tuple[Any, ...]:
        """What a reader is shown of the validation: the AUC table and the main scorer on the minimal pairs
        (nothing when the run does not validate)."""
        return (self.validation_summary, self.main_validation) if self.validation else ()

    @property
    def score_table(self) -> pd.DataFrame:
        """Models x sub-dimensions and dimensions, scores 0-100."""
        wide = [pj.score_matrix(self.scores, "subdimension"), pj.score_matrix(self.scores, "dimension")]
        return pd.concat(wide, axis=1).round(1)

    @property
    def comparisons_shown(self) -> pd.DataFrame:
        return self.comparisons[COMPARISONS_SHOWN].round(3)

    @property
    def consistency_shown(self) -> pd.DataFrame:
        return self.consistency.round(1)

    def sections(self) -> list[tuple[str, Any]]:
        parts: list[tuple[str, Any]] = [
            ("", f"{self.instrument_note()}; {len(self.completions)} completions, {len(self.cases)} cases"),
            ("Completions per model", self.usable),
            (f"Scoring (figures use the {self.scoring.used} scorer)", self.scored["status"].value_counts().to_frame()),
        ]
        if self.validation:
            parts.append(("Validation: ROC AUC on labelled completions", self.validation_summary))
        return parts + [
            ("Scores per model (0-100)", self.score_table),
            ("The paper's second-hand findings", self.findings_table),
        ]

    def metrics(self) -> dict[str, Any]:
        completions, scores, rel, findings = self.completions, self.scores, self.reliability, self.findings_table
        sub = scores[scores["level"] == "subdimension"].set_index(["model", "measure"])["score"]
        dim = scores[scores["level"] == "dimension"].set_index(["model", "measure"])["score"]
        rel_numbers = rel.metrics()
        meta = scores.drop_duplicates("model").set_index("model")
        return {
            "panel": self.settings.panel,
            "scorer": self.settings.scorer,
            "scorer_used": self.scoring.used,
            "main_scorer_coverage": round(self.scoring.coverage, 4),
            "n_models": int(completions["model"].nunique()),
            "n_stems": len(self.instrument.stems),
            "n_completions": len(completions),
            "n_usable": int(completions["usable"].sum()),
            "n_cases": len(self.cases),
            "usable_rate": {m: round(float(v), 4) for m, v in completions.groupby("model")["usable"].mean().items()},
            "scorer_status": self.scored["status"].value_counts().to_dict(),
            "subdimension_scores": {f"{m}|{s}": round(float(v), 3) for (m, s), v in sub.items()},
            "dimension_scores": {f"{m}|{d}": round(float(v), 3) for (m, d), v in dim.items()},
            "reportable_scores": int(scores.loc[scores["level"] == "subdimension", "reportable"].sum()),
            "reliability": {k: v for k, v in rel_numbers.items() if k != "icc2k"},
            "findings": dict(zip(findings["finding"], findings["verdict"], strict=True)),
            "validation_auc": {
                f"{n}|{part}": v.metrics()["roc_auc"]["overall"] for (n, part), v in self.validation.items()
            },
            "respondents": int(completions["respondent"].nunique()),
            "training_stage": meta["training_stage"].to_dict(),
            "params_b": meta["params_b"].astype(float).to_dict(),
            "icc2k": rel_numbers["icc2k"],
            "reportable_by_model": rel.gate.groupby("model")["reportable"].sum().astype(int).to_dict(),
            "agreement_icc_ci": None
            if rel.agreement is None
            else [round(float(rel.agreement.iloc[0][c]), 4) for c in ("icc_agreement_low", "icc_agreement_high")],
            "findings_measured": dict(zip(findings["finding"], findings["measured"], strict=True)),
        }


def run(run: Run) -> ProjectiveResult:
    """Administer (or replay) the stems, score, validate the scorers, measure the reliability, score and
    compare the models; save the stage's outputs (``_run_outputs``)."""
    settings, mode = run.settings.projective, run.settings.mode
    if mode == "live":  # the key of every model it will call (the panel's and the judge's), before the first call
        check_run_keys(settings.panel, [settings.judge] if settings.judged_by else [])

    # 1. the instrument; 2. administration (replayed from the run's store unless live)
    instrument = pj.load_instrument().select(settings.stem_ids)
    completions, runner = pj.administer(
        settings.panel,
        mode=mode,
        stem_ids=settings.stem_ids,
        max_models=settings.max_models,
        respondents_per_model=settings.respondents_per_model,
        store=run.store(pj.STUDY),
    )
    run.save_data(completions, "projective_completions")

    # 3. scoring by the main scorer (or its fallback) and the second one; their validation on labelled sets
    cases = pj.scoring_cases(completions, instrument)
    scoring = pj.score_panel(
        cases,
        settings.scorer,
        settings.second_scorer,
        settings.fallback_scorer,
        judge_model=settings.judge,
        mode=mode,
        judge_store=run.store(pj.JUDGE_STUDY),
    )
    scored, second = scoring.scored, scoring.second
    run.save_data(scored, f"projective_scored_{scoring.used}")
    if second is not None:
        run.save_data(second, f"projective_scored_{scoring.second_name}")
    validation: dict[tuple[str, str], scorer_validation.ScorerValidation] = {}
    if settings.validate:
        for name in dict.fromkeys([settings.scorer, scoring.used, settings.second_scorer or settings.scorer]):
            for part, file, split in VALIDATION_SETS:
                validation[(name, part)] = scorer_validation.validate(
                    paths.INSTRUMENTS / file, name, split=split, mode=mode, raw=run.folders.raw, base=run.folders.base
                )
        run.save_table(auc_summary(validation).round(4).reset_index(), "projective_scorer_validation")

    # 4. reliability; 5. scores per model, with their reliability
    rel = pj.assess_reliability(scored, second)
    run.save_table(rel.consistency.round(4), "projective_internal_consistency")
    run.save_table(rel.retest.round(4), "projective_test_retest")
    if rel.agreement is not None:
        run.save_table(rel.agreement.round(4), "projective_agreement")
    scores = pj.attach_reliability(pj.model_scores(scored, n_boot=settings.n_boot, seed=settings.seed), rel.gate)
    run.save_data(scores, "projective_scores")
    run.save_table(scores.round(3), "projective_scores")
    figures = Figures()
    figures["subdimension_bars"] = pj.plot_subdimension_bars(scores)
    run.save_figure(figures["subdimension_bars"], "projective_subdimension_bars")
    figures["heatmap"] = pj.plot_heatmap(scores)
    run.save_figure(figures["heatmap"], "projective_heatmap")
    if second is not None:
        figures["scorer_agreement"] = pj.plot_scorer_agreement(scored, second, scoring.used, scoring.second_name)
        run.save_figure(figures["scorer_agreement"], "projective_scorer_agreement")

    # 6. comparisons by training stage, family and size; 7. the paper's second-hand findings
    comparisons = pd.concat(
        [pj.compare_groups(scored, by) for by in ("training_stage", "family", "size")], ignore_index=True
    )
    run.save_table(comparisons.round(4), "projective_comparisons")
    consistency = pj.consistency(scored)
    findings = pj.paper_findings(scores, scored)
    run.save_table(consistency.round(2), "projective_consistency")
    run.save_table(findings, "projective_findings")

    for fig in figures.values():  # shown where the notebook names them
        plt.close(fig)
    return ProjectiveResult(
        settings=settings, instrument=instrument, completions=completions, calls=runner.report, cases=cases,
        scoring=scoring, validation=validation, reliability=rel, scores=scores, comparisons=comparisons,
        consistency=consistency, findings_table=findings, figures=figures,
    )  # fmt: skip
