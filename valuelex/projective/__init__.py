"""Projective value assessment: sentence completion scored on the six value sub-dimensions.

The paper's step 4 gives models Rotter-style incomplete sentences and plots six sub-dimension
scores per model. The package has one module per concern:

* ``instrument``: the stems, administration through the LLM layer (``data/raw/projective/``),
  completions and scoring cases;
* ``embedding``: the embedding scorer (similarity to high/low exemplar sentences, calibrated);
* ``judge``: the LLM judge with a rubric per sub-dimension (sampled JSON verdicts, and the
  log-probability judge that reads the rubric's answer tokens), calls in ``data/raw/judge/``;
* ``scorers``: the scorer interface and the default scorer;
* ``reliability``: internal consistency across stems, test-retest, agreement between scorers;
* ``scores``: per-model scores with CIs, group comparisons, the paper's second-hand findings;
* ``validation``: a scorer's ROC AUC (DeLong CI) on labelled completions (notebook 06, ``valuelex scorer-eval``);
* ``plots``: the figures.

Every scorer shares one interface, ``scorer.score(cases) -> cases + score in [0, 1]`` (the
probability-like degree to which the completion shows the sub-dimension). The names used by
notebooks and tests are re-exported here, so ``from valuelex import projective as pj`` is enough.
"""

from .embedding import (
    Calibration,
    Descriptions,
    EmbeddingScorer,
    Poles,
    embed,
    embedding_model,
    load_calibration,
    load_descriptions,
    save_calibration,
)
from .instrument import (
    CALIBRATION_FILE,
    DEFAULT_JUDGE,
    DEFAULT_PANEL,
    DESCRIPTIONS_FILE,
    DIMENSIONS,
    INSTRUMENT_FILE,
    JUDGE_STUDY,
    RUBRIC_FILE,
    STANCE_CALIBRATION_FILE,
    STUDY,
    SUBDIMENSIONS,
    Instrument,
    Stem,
    administer,
    build_requests,
    canonical_subdimension,
    clean_completion,
    completion_only,
    completion_text,
    completions_table,
    load_instrument,
    scoring_cases,
)
from .judge import (
    JudgeScorer,
    LogprobJudge,
    Rubrics,
    Verdict,
    answer_distribution,
    judge_sample,
    load_rubrics,
    parse_verdict,
)
from .plots import plot_heatmap, plot_scorer_agreement, plot_subdimension_bars
from .reliability import Reliability, assess_reliability
from .scorers import (
    DEFAULT_SCORER,
    SCORERS,
    PanelScoring,
    Scorer,
    StanceCalibration,
    StanceScorer,
    load_stance_calibration,
    make_scorer,
    save_stance_calibration,
    score_panel,
)
from .scores import (
    attach_reliability,
    case_scores_by_measure,
    compare_groups,
    consistency,
    model_scores,
    paper_findings,
    score_matrix,
)

__all__ = [
    "CALIBRATION_FILE",
    "DEFAULT_JUDGE",
    "DEFAULT_PANEL",
    "DESCRIPTIONS_FILE",
    "DIMENSIONS",
    "INSTRUMENT_FILE",
    "JUDGE_STUDY",
    "RUBRIC_FILE",
    "STANCE_CALIBRATION_FILE",
    "STUDY",
    "DEFAULT_SCORER",
    "SCORERS",
    "Scorer",
    "StanceCalibration",
    "StanceScorer",
    "LogprobJudge",
    "Reliability",
    "assess_reliability",
    "answer_distribution",
    "load_stance_calibration",
    "make_scorer",
    "PanelScoring",
    "score_panel",
    "save_stance_calibration",
    "SUBDIMENSIONS",
    "Calibration",
    "Descriptions",
    "EmbeddingScorer",
    "Instrument",
    "JudgeScorer",
    "Poles",
    "Rubrics",
    "Stem",
    "Verdict",
    "administer",
    "attach_reliability",
    "build_requests",
    "canonical_subdimension",
    "case_scores_by_measure",
    "clean_completion",
    "compare_groups",
    "completion_only",
    "completion_text",
    "completions_table",
    "consistency",
    "embed",
    "embedding_model",
    "judge_sample",
    "load_calibration",
    "load_descriptions",
    "load_instrument",
    "load_rubrics",
    "model_scores",
    "paper_findings",
    "parse_verdict",
    "plot_heatmap",
    "plot_scorer_agreement",
    "plot_subdimension_bars",
    "save_calibration",
    "score_matrix",
    "scoring_cases",
]
