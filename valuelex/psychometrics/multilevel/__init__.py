"""Separate the model that answered from the value structure: within- and between-model analysis.

A respondent is a (model, decoding setting) pair, so a panel of K models holds K clusters of
near-replicates. A word one model likes co-occurs across that model's respondents whatever it
means, and the pooled word correlations mix two things: what co-occurs *inside* a model's answers
(the within-model structure) and how the models' vocabularies differ (the between-model
structure). This module splits them, following R's ``psych::statsBy`` (the tests check it):

1. :func:`stats_by`: per word the group means, ``F``, ``ICC1`` and ``ICC2`` (with confidence
   intervals), ``eta`` with the group means and with the within-group deviations; the pooled
   within-group correlations ``rwg`` (Pearson on group-centred data) and the group-size weighted
   between-group correlations ``rbg``. On a units x words matrix the identity
   ``r = eta_wx eta_wy rwg + eta_bx eta_by rbg`` holds exactly.
2. :func:`within_correlation`: a within-model correlation matrix for 0/1 words. Three are offered;
   the default, ``"tetrachoric"``, is the tetrachoric correlation with one threshold per word
   *and model*, estimated by maximum likelihood over all models at once (a model's vocabulary
   moves its thresholds, not the latent correlation). ``"rwg"`` is statsBy's Pearson correlation of
   model-centred data; ``"tetrachoric_pooled"`` averages per-model tetrachorics by Fisher's z.
   Notebook 07 compares them by simulation (``simulate.compare_within_correlations``): the default
   is the only one that is unbiased for the planted latent correlations and keeps the factor count.
3. ``efa.EFA(settings).fit(incidence, groups)``: the exploratory pipeline of :mod:`valuelex.psychometrics.efa` on the within-model
   matrix, with a parallel analysis whose null shuffles each word *within* each model (keeping
   every model's vocabulary) and ``n_obs = units - models``.
4. :func:`compare_levels`: pooled, within- and between-model factors side by side, and per pooled
   factor how much of it is model identity (eta squared and ICC1 of its scores between models,
   congruence with the best within- and between-model factor).
5. :func:`crossed_decomposition`: at the response level (unit = one answer to one prompt) both the
   model and the prompt group the units; per word the variance shares of model, prompt, their
   interaction and the rest.

Every default here is our choice; the paper does not consider the confound.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from ...core.display import Report
from .. import efa
from ..efa.settings import EFASettings

# psych::statsBy and the within-group correlations live below this module (the EFA estimator uses them
# too); they are part of this module's interface, where the notebooks and tests look for them.
from ..efa.within import (  # noqa: F401
    DEFAULT_WITHIN_CORRELATION,
    WITHIN_CORRELATIONS,
    between_correlation,
    bivariate_normal_excess,
    pooled_tetrachoric,
    prepare_within,
    raw_within_correlation,
    within_bootstrap,
    within_correlation,
    within_parallel_analysis,
    within_tetrachoric,
)
from ..statsby import StatsBy, _codes, _group_sums, latent_icc, stats_by  # noqa: F401

#: Factors are said to match when their Tucker congruence reaches this (Lorenzo-Seva & ten Berge: "fair").
MATCH_CONGRUENCE = 0.85


def group_labels(index: pd.Index, table: pd.DataFrame, key: str, column: str) -> pd.Series:
    """The ``column`` of ``table`` (looked up by its ``key`` column) for every unit in ``index``.

    Raises a one-line error naming the units that ``table`` does not know.
    """
    lookup = table.drop_duplicates(key).set_index(key)[column]
    missing = [u for u in index if u not in lookup.index]
    if missing:
        raise efa.EFAInputError(f"{len(missing)} units have no {column!r} in the {key!r} table (first: {missing[0]!r})")
    return pd.Series(lookup.loc[list(index)].to_numpy(), index=index, name=column)


# ------------------------------------------------------------------------------------------


def unit_models(index: pd.Index, respondents: pd.DataFrame, column: str = "model") -> pd.Series:
    """The model (or another ``respondents`` column) of every unit: a respondent id, or a response id
    ``respondent|prompt|sample`` (``lexicon.incidence_matrix(unit="response")``)."""
    known = set(respondents["respondent"])
    owners = [u if u in known else str(u).rsplit("|", 2)[0] for u in index]
    return group_labels(pd.Index(owners), respondents, "respondent", column).set_axis(index)


# ------------------------------------------------------------------------------------------
# ------------------------------------------------------------------------------------------
# 4. How much of a factor is model identity
# ------------------------------------------------------------------------------------------
def score_shares(
    incidence: pd.DataFrame, word_factors: pd.DataFrame, groups: pd.Series | np.ndarray | list
) -> pd.DataFrame:
    """Per factor: the share of its score variance between groups (eta squared) and its ICC1.

    A unit's score on a factor is the share of the factor's assigned words it used (as
    :func:`valuelex.psychometrics.efa.factor_model_association`); eta squared is the between-group sum of squares
    over the total, ICC1 statsBy's chance-corrected version (about 0 when the groups do not differ;
    eta squared is then about ``(groups - 1) / (units - 1)``). A factor with a high share is largely
    the vocabulary of one or a few groups. ``main_within_source`` is the group contributing most of the
    score's within-group variance and ``its_within_share`` its share: a within-group factor fed mostly by
    one group is that group's internal structure, not one the groups share.
    """
    codes, labels = _codes(groups, incidence.shape[0])
    rows, scores = [], {}
    for factor, g in word_factors[word_factors["assigned"]].groupby("factor", sort=False):
        words = [w for w in g["word"] if w in incidence.columns]
        if words:
            scores[factor] = (incidence[words] > 0).mean(axis=1).to_numpy()
            rows.append({"factor": factor, "words": len(words)})
    if not rows:
        return pd.DataFrame(
            columns=["factor", "words", "eta_squared", "ICC1", "main_within_source", "its_within_share"]
        )
    frame = pd.DataFrame(scores)
    total = ((frame - frame.mean()) ** 2).sum()
    means = frame.groupby(codes).transform("mean")
    between = ((means - frame.mean()) ** 2).sum()
    decomposition = stats_by(frame, codes)
    within = ((frame - means) ** 2).groupby(codes).sum()  # groups x factors
    within_share = within / within.sum().where(within.sum() > 0)
    out = pd.DataFrame(rows)
    out["eta_squared"] = (between / total.where(total > 0)).to_numpy()
    out["ICC1"] = decomposition.ICC1.to_numpy()
    out["main_within_source"] = [labels[i] for i in within_share.fillna(0).to_numpy().argmax(axis=0)]
    out["its_within_share"] = within_share.max().to_numpy()
    return out


def _best_matches(reference: efa.EFAResult, other: efa.EFAResult | None, prefix: str) -> pd.DataFrame:
    """For each factor of ``reference``, the factor of ``other`` with the largest |congruence| (common words)."""
    if other is None:
        return pd.DataFrame(
            {f"{prefix}_factor": [""] * reference.n_factors, f"{prefix}_congruence": [np.nan] * reference.n_factors}
        )
    words = [w for w in reference.loadings.index if w in other.loadings.index]
    c = np.abs(np.nan_to_num(efa.congruence(reference.loadings.loc[words], other.loadings.loc[words])))
    best = c.argmax(axis=1)
    return pd.DataFrame(
        {
            f"{prefix}_factor": [other.factors[j] for j in best],
            f"{prefix}_congruence": c[np.arange(len(best)), best],
        }
    )


@dataclass(repr=False)  # IPython would prefer a dataclass __repr__ to Report's display
class LevelComparison(Report):
    """Pooled, within-group and between-group factor solutions of the same words, side by side."""

    group: str
    decomposition: StatsBy
    pooled: efa.EFAResult
    within: efa.Analysis
    between: efa.EFAResult | None
    between_correlation: efa.CorrelationResult
    pooled_shares: pd.DataFrame  # factor, words, eta_squared, ICC1 of the pooled factors
    within_shares: pd.DataFrame
    cutoff: float
    stability: efa.BootstrapResult | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:  # type: ignore[override]
        return f"Pooled, within-{self.group} and between-{self.group} factors"

    def levels(self) -> pd.DataFrame:
        """One row per level: correlation, units it rests on, words, factors, RMSR, smoothing."""
        rows = [
            ("pooled", "as fitted (pooled)", self.pooled.n_obs, self.pooled),
            ("within", self.within.correlation.method, self.within.correlation.n_obs, self.within.result),
            ("between", "rbg (group means)", self.between_correlation.n_obs, self.between),
        ]
        out = []
        for level, corr, n_obs, res in rows:
            out.append(
                {
                    "level": level,
                    "correlation": corr,
                    "n_obs": n_obs,
                    "words": None if res is None else len(res.loadings),
                    "factors": None if res is None else res.n_factors,
                    "rmsr": np.nan if res is None else res.fit["rmsr"],
                    "variance_explained": np.nan if res is None else float(res.variance.loc["Proportion Var"].sum()),
                }
            )
        out[0]["factors_from"] = "as fitted above"
        out[1]["factors_from"] = f"parallel analysis, {self.within.parallel.null}" if self.within.parallel else "fixed"
        out[2]["factors_from"] = f"pooled count, at most {self.between_correlation.n_obs - 1} ({self.group}s - 1)"
        return pd.DataFrame(out)

    def attribution(self) -> pd.DataFrame:
        """Per pooled factor: its share of model identity and the within/between factor it resembles most."""
        table = self.pooled_shares.rename(columns={"eta_squared": "eta_squared_model", "ICC1": "ICC1_model"})
        table = table.set_index("factor").reindex(self.pooled.factors).reset_index()
        table = pd.concat(
            [
                table,
                _best_matches(self.pooled, self.within.result, "within"),
                _best_matches(self.pooled, self.between, "between"),
            ],
            axis=1,
        )
        verdict = []
        for _, row in table.iterrows():
            w, b = row["within_congruence"], row["between_congruence"]
            if w >= MATCH_CONGRUENCE and not (b > w):
                verdict.append("within-model structure")
            elif b >= MATCH_CONGRUENCE and not (w >= MATCH_CONGRUENCE):
                verdict.append("model vocabulary")
            elif w >= MATCH_CONGRUENCE:
                verdict.append("both")
            else:
                verdict.append("neither clearly")
        table["resembles"] = verdict
        return table

    def within_top_words(self, n: int = 10) -> pd.DataFrame:
        return efa.top_words(self.within.result, n)

    def sections(self) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = [
            ("Levels", self.levels()),
            (
                f"Pooled factors: how much is {self.group} identity",
                self.attribution(),
            ),
            (f"Within-{self.group} factors: share of {self.group} identity in their scores", self.within_shares),
            (f"Within-{self.group} factors: top words", self.within_top_words(8)),
        ]
        if self.stability is not None:
            out.append((f"Within-{self.group} factors: bootstrap congruence", self.stability.summary_table()))
        if self.notes:
            out.append(("Notes", "\n".join(self.notes)))
        return out

    def metrics(self) -> dict[str, Any]:
        attribution = self.attribution()
        out = {
            "pooled_factors": self.pooled.n_factors,
            "within_factors": self.within.result.n_factors,
            "between_factors": 0 if self.between is None else self.between.n_factors,
            "within_words": len(self.within.result.loadings),
            "within_n_obs": self.within.correlation.n_obs,
            "pooled_eta_squared": [round(float(v), 3) for v in attribution["eta_squared_model"]],
            "pooled_within_congruence": [round(float(v), 3) for v in attribution["within_congruence"]],
            "pooled_between_congruence": [round(float(v), 3) for v in attribution["between_congruence"]],
            "within_eta_squared": [round(float(v), 3) for v in self.within_shares["eta_squared"]],
        }
        if self.stability is not None:
            out["within_bootstrap_median"] = [round(float(v), 3) for v in self.stability.summary_table()["median"]]
        return out


def compare_levels(
    data: pd.DataFrame,
    groups: pd.Series | np.ndarray | list,
    pooled: efa.EFAResult,
    within: efa.Analysis,
    group: str = "model",
    stability: efa.BootstrapResult | None = None,
) -> LevelComparison:
    """Put the pooled solution (as fitted on ``data``) next to the within-group solution and a between-group
    solution of the same words.

    The between-group factors are ``psych::fa`` of statsBy's ``rbg``: ``min(pooled factors, groups - 1)``
    factors, since K groups span at most K - 1 directions. With fewer groups than words this is a
    description of how the groups' vocabularies differ, not an estimable factor model; it is used here
    only to see which pooled factors look like it (Tucker congruence).
    """
    codes, labels = _codes(groups, data.shape[0])
    notes = list(within.notes)
    decomposition = stats_by(data, codes, group=group)
    varying = decomposition.rbg.notna().all(axis=0) & decomposition.ICC1.notna()
    between_data = data.loc[:, varying.to_numpy()]
    between_corr = between_correlation(between_data, codes)
    k_between = min(pooled.n_factors, len(labels) - 1)
    between = None
    if k_between >= 1 and between_data.shape[1] >= 3:
        # n_obs: the units the matrix is computed over, as statsBy does; its fit indices are not read.
        with threadpool_limits(limits=1):
            between = efa.fit_efa(between_corr.matrix, k_between, n_obs=data.shape[0], rotation=pooled.rotation)
        notes.append(
            f"between-{group} factors: {k_between} from {len(labels)} {group}s (rank at most {len(labels) - 1}); "
            "descriptive, their fit indices are not reported"
        )
    cutoff = pooled.cutoff  # the run's efa.cutoff, carried by the pooled solution
    pooled_table = efa.word_factors(pooled, cutoff)
    within_table = efa.word_factors(within.result, cutoff)
    named = np.asarray(labels, dtype=object)[codes]  # group names, not codes, in the tables
    return LevelComparison(
        group=group,
        decomposition=decomposition,
        pooled=pooled,
        within=within,
        between=between,
        between_correlation=between_corr,
        pooled_shares=score_shares(data, pooled_table, named),
        within_shares=score_shares(data, within_table, named),
        cutoff=cutoff,
        stability=stability,
        notes=notes,
    )


# ------------------------------------------------------------------------------------------
# 5. Response-level units: model and prompt both group the answers
# ------------------------------------------------------------------------------------------
@dataclass(repr=False)  # IPython would prefer a dataclass __repr__ to Report's display
class CrossedDecomposition(Report):
    """Per word, the variance shares of two crossed groupings (e.g. model and prompt) of the units."""

    factors: tuple[str, str]
    shares: pd.DataFrame  # word, mean, eta2 per factor, interaction, residual; ICC1 per factor and cell
    balanced: bool
    n_units: int
    levels: tuple[int, int]

    @property
    def title(self) -> str:  # type: ignore[override]
        a, b = self.factors
        return f"Word use by {a} and by {b} (response-level units)"

    def summary(self) -> dict[str, Any]:
        a, b = self.factors
        s = self.shares
        return {
            "units": self.n_units,
            f"{a}s": self.levels[0],
            f"{b}s": self.levels[1],
            "balanced design": self.balanced,
            f"median share {a}": float(s[f"eta2_{a}"].median()),
            f"median share {b}": float(s[f"eta2_{b}"].median()),
            f"median share {a} x {b}": float(s[f"eta2_{a}_x_{b}"].median()),
            "median share residual": float(s["eta2_residual"].median()),
            f"words more {a} than {b}": int((s[f"eta2_{a}"] > s[f"eta2_{b}"]).sum()),
        }

    def sections(self) -> list[tuple[str, Any]]:
        a, b = self.factors
        return [
            ("Summary", self.summary()),
            (f"Words most tied to the {a}", self.shares.nlargest(10, f"eta2_{a}")),
            (f"Words most tied to the {b}", self.shares.nlargest(10, f"eta2_{b}")),
        ]

    def metrics(self) -> dict[str, Any]:
        return {k.replace(" ", "_"): v for k, v in self.summary().items()}


def crossed_decomposition(data: pd.DataFrame, first: pd.Series, second: pd.Series) -> CrossedDecomposition:
    """Sums of squares of each word by two crossed groupings: first, second, their interaction, residual.

    Shares are eta squared (sum of squares over the total). The main effects are those of the cell
    means' marginal averages; with a balanced design (every cell the same size, as the local panel's
    4 models x 15 prompts x 30 respondents) the four parts add up exactly, otherwise the interaction
    takes the remainder and ``balanced`` is False. ICC1 (statsBy) is given for each grouping alone
    and for the cells.
    """
    a_name, b_name = str(first.name or "first"), str(second.name or "second")
    x = data.to_numpy(float)
    n = x.shape[0]
    a_codes, _ = _codes(first, n)
    b_codes, _ = _codes(second, n)
    cell = a_codes * (b_codes.max() + 1) + b_codes
    cell_codes, cell_labels = pd.factorize(cell, sort=True)
    sizes = np.bincount(cell_codes)
    balanced = len(cell_labels) == (a_codes.max() + 1) * (b_codes.max() + 1) and len(set(sizes)) == 1
    grand = x.mean(axis=0)
    total = ((x - grand) ** 2).sum(axis=0)

    def between(codes: np.ndarray) -> np.ndarray:
        sums = _group_sums(x, codes, codes.max() + 1)
        counts = np.bincount(codes)[:, None]
        return (counts * (sums / counts - grand) ** 2).sum(axis=0)

    ss_a, ss_b, ss_cells = between(a_codes), between(b_codes), between(cell_codes)
    ss_ab = ss_cells - ss_a - ss_b
    ss_res = total - ss_cells
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = pd.DataFrame(
            {
                "word": data.columns,
                "mean": grand,
                f"eta2_{a_name}": ss_a / total,
                f"eta2_{b_name}": ss_b / total,
                f"eta2_{a_name}_x_{b_name}": ss_ab / total,
                "eta2_residual": ss_res / total,
                f"ICC1_{a_name}": stats_by(data, a_codes).ICC1.to_numpy(),
                f"ICC1_{b_name}": stats_by(data, b_codes).ICC1.to_numpy(),
                f"ICC1_{a_name}_x_{b_name}": stats_by(data, cell_codes).ICC1.to_numpy(),
            }
        )
    return CrossedDecomposition(
        (a_name, b_name), shares, bool(balanced), n, (int(a_codes.max() + 1), int(b_codes.max() + 1))
    )


def cell_labels(first: pd.Series, second: pd.Series) -> pd.Series:
    """One group label per (first, second) cell, e.g. model x prompt."""
    return pd.Series(
        [f"{a}|{b}" for a, b in zip(first, second, strict=True)],
        index=first.index,
        name=f"{first.name}_x_{second.name}",
    )


def response_groups(index: pd.Index, respondents: pd.DataFrame) -> pd.DataFrame:
    """Model and prompt of every response-level unit (``respondent|prompt|sample``, as ``lexicon.incidence_matrix``)."""
    parts = pd.Series(index, index=index).str.rsplit("|", n=2, expand=True)
    if parts.shape[1] != 3 or parts.isna().any().any():
        raise efa.EFAInputError("response units must be named 'respondent|prompt|sample' (lexicon.incidence_matrix)")
    model = group_labels(pd.Index(parts[0]), respondents, "respondent", "model")
    return pd.DataFrame({"model": model.to_numpy(), "prompt": parts[1].to_numpy()}, index=index)


@dataclass(repr=False)  # IPython would prefer a dataclass __repr__ to Report's display
class ResponseLevels(Report):
    """Response-level units: the pooled EFA and the EFA within model x prompt cells, side by side."""

    crossed: CrossedDecomposition
    pooled: efa.Analysis
    within: efa.Analysis
    pooled_shares: pd.DataFrame  # per pooled factor: words, ICC1 by model, by prompt, by cell; within match
    within_shares: pd.DataFrame
    cutoff: float

    title = "Response-level units: what the model and the prompt put into the factors"

    def levels(self) -> pd.DataFrame:
        rows = []
        for level, corr, res, parallel in (
            ("pooled", self.pooled.correlation, self.pooled.result, self.pooled.parallel),
            ("within model x prompt", self.within.correlation, self.within.result, self.within.parallel),
        ):
            rows.append(
                {
                    "level": level,
                    "correlation": corr.method,
                    "n_obs": corr.n_obs,
                    "words": len(res.loadings),
                    "factors": res.n_factors,
                    "parallel_null": parallel.null if parallel else "fixed count",
                    "smoothed": corr.smoothed,
                    "rmsr": res.fit["rmsr"],
                }
            )
        return pd.DataFrame(rows)

    def sections(self) -> list[tuple[str, Any]]:
        return [
            ("Word use by model and by prompt", self.crossed.summary()),
            ("Levels", self.levels()),
            ("Pooled response-level factors: ICC1 of their scores by model, prompt and cell", self.pooled_shares),
            ("Within model x prompt factors: top words", efa.top_words(self.within.result, 8)),
        ]

    def metrics(self) -> dict[str, Any]:
        return {
            "response_units": self.crossed.n_units,
            "response_words": len(self.pooled.result.loadings),
            "response_pooled_factors": self.pooled.result.n_factors,
            "response_within_factors": self.within.result.n_factors,
            "response_median_share_model": float(self.crossed.shares[f"eta2_{self.crossed.factors[0]}"].median()),
            "response_median_share_prompt": float(self.crossed.shares[f"eta2_{self.crossed.factors[1]}"].median()),
            "response_pooled_icc1_model": [round(float(v), 3) for v in self.pooled_shares["ICC1_model"]],
            "response_pooled_icc1_prompt": [round(float(v), 3) for v in self.pooled_shares["ICC1_prompt"]],
        }


def analyse_responses(responses: pd.DataFrame, groups: pd.DataFrame, settings: EFASettings) -> ResponseLevels:
    """Response-level units (one answer to one prompt) grouped by ``groups["model"]`` and ``groups["prompt"]``.

    The pooled pipeline of notebook 03 on the responses, with the run's EFA settings (``settings.efa``);
    the same words analysed within model x prompt cells (what co-occurs inside the answers of one model
    to one prompt: model, prompt and their interaction removed); per word the variance shares of model,
    prompt and interaction; per pooled factor the ICC1 of its scores by model, by prompt and by cell,
    and its best within-cell match.
    """
    model, prompt = groups["model"].rename("model"), groups["prompt"].rename("prompt")
    pooled = efa.EFA(settings).fit(responses)
    data = pooled.prepared.data
    cells = cell_labels(model, prompt)
    within = efa.EFA(settings).fit(responses, cells, prepared=pooled.prepared)
    cutoff = settings.cutoff
    pooled_table = efa.word_factors(pooled.result, cutoff)
    shares = score_shares(data, pooled_table, model)[["factor", "words", "ICC1"]].rename(columns={"ICC1": "ICC1_model"})
    shares["ICC1_prompt"] = score_shares(data, pooled_table, prompt)["ICC1"].to_numpy()
    shares["ICC1_cell"] = score_shares(data, pooled_table, cells)["ICC1"].to_numpy()
    shares = shares.set_index("factor").reindex(pooled.result.factors).reset_index()
    shares = pd.concat([shares, _best_matches(pooled.result, within.result, "within_cell")], axis=1)
    return ResponseLevels(
        crossed=crossed_decomposition(data, model, prompt),
        pooled=pooled,
        within=within,
        pooled_shares=shares,
        within_shares=score_shares(data, efa.word_factors(within.result, cutoff), cells),
        cutoff=cutoff,
    )
