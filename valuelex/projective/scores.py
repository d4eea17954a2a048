"""Scores per model (0-100, stem-bootstrap CIs), group comparisons and the paper's second-hand findings."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .instrument import DIMENSIONS, SUBDIMENSIONS, canonical_subdimension


# ---------------------------------------------------------------------------------------------
# Aggregation
# ---------------------------------------------------------------------------------------------
def model_scores(
    scored: pd.DataFrame, n_boot: int = 2000, level: float = 0.95, seed: int = 0, cluster: str = "stem_id"
) -> pd.DataFrame:
    """Per-model scores (0-100) on the six sub-dimensions and three dimensions, with bootstrap CIs.

    A sub-dimension score is the mean score of the model's valid cases on it; a dimension score
    is the mean of its two sub-dimension scores. The CI resamples stems (``cluster``) with
    replacement: completions of one stem are not independent.
    """
    valid = scored[scored["valid"]]
    rng = np.random.default_rng(seed)
    alpha = (1 - level) / 2
    rows = []
    for model, g in valid.groupby("model", sort=False):
        clusters = list(dict.fromkeys(g[cluster]))
        index = {c: i for i, c in enumerate(clusters)}
        sums = np.zeros((len(clusters), len(SUBDIMENSIONS)))
        counts = np.zeros_like(sums)
        for c, sub, s in zip(g[cluster], g["subdimension"], g["score"], strict=True):
            j = SUBDIMENSIONS.index(canonical_subdimension(sub))
            sums[index[c], j] += s
            counts[index[c], j] += 1
        weights = rng.multinomial(len(clusters), np.full(len(clusters), 1 / len(clusters)), size=n_boot)
        with np.errstate(invalid="ignore", divide="ignore"):
            point_sub = sums.sum(0) / counts.sum(0)
            boot_sub = (weights @ sums) / (weights @ counts)
        point = dict(zip(SUBDIMENSIONS, point_sub, strict=True))
        boot = dict(zip(SUBDIMENSIONS, boot_sub.T, strict=True))
        n = dict(zip(SUBDIMENSIONS, counts.sum(0).astype(int), strict=True))
        for dim, (a, b) in DIMENSIONS.items():
            point[dim] = (point[a] + point[b]) / 2
            boot[dim] = (boot[a] + boot[b]) / 2
            n[dim] = n[a] + n[b]
        for measure in (*SUBDIMENSIONS, *DIMENSIONS):
            values = boot[measure][np.isfinite(boot[measure])]
            lo, hi = np.quantile(values, [alpha, 1 - alpha]) if len(values) else (np.nan, np.nan)
            rows.append(
                {
                    "model": model,
                    "training_stage": g["training_stage"].iloc[0],
                    "family": g["family"].iloc[0],
                    "params_b": g["params_b"].iloc[0],
                    "level": "subdimension" if measure in SUBDIMENSIONS else "dimension",
                    "measure": measure,
                    "score": 100 * point[measure],
                    "ci_low": 100 * lo,
                    "ci_high": 100 * hi,
                    "n_cases": n[measure],
                }
            )
    return pd.DataFrame(rows)


def score_matrix(scores: pd.DataFrame, level: str = "subdimension") -> pd.DataFrame:
    """Models x measures table of scores (rows in panel order)."""
    wanted = SUBDIMENSIONS if level == "subdimension" else tuple(DIMENSIONS)
    table = scores[scores["level"] == level].pivot(index="model", columns="measure", values="score")
    return table.loc[list(dict.fromkeys(scores["model"])), list(wanted)]


def case_scores_by_measure(scored: pd.DataFrame) -> pd.DataFrame:
    """Long table of valid case scores per measure: sub-dimensions, plus dimensions (cases of both halves)."""
    valid = scored[scored["valid"]].copy()
    valid["measure"] = valid["subdimension"].map(canonical_subdimension)
    parts = [valid]
    for dim, subs in DIMENSIONS.items():
        part = valid[valid["measure"].isin(subs)].copy()
        part["measure"] = dim
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values."""
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    order = np.argsort(p[ok])
    m = ok.sum()
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[ok][order])
    tmp = np.empty(m)
    tmp[order] = np.minimum(adjusted, 1.0)
    out[ok] = tmp
    return out


def compare_groups(scored: pd.DataFrame, by: str = "training_stage") -> pd.DataFrame:
    """Test whether case scores differ between groups of models, per measure, with effect sizes.

    ``by``: ``training_stage`` or ``family`` (two groups: Mann-Whitney U with the rank-biserial
    correlation; more: Kruskal-Wallis H with epsilon squared), or ``size`` (Spearman's rho between
    parameter count and case score). Cases are completions x sub-dimensions; they are treated as
    independent, so a p-value speaks about these models' completions, not about a population of
    models. p-values are Holm-adjusted over the nine measures.
    """
    long = case_scores_by_measure(scored)
    rows = []
    for measure in (*SUBDIMENSIONS, *DIMENSIONS):
        g = long[long["measure"] == measure]
        row: dict[str, Any] = {"by": by, "measure": measure, "n_cases": len(g), "n_models": g["model"].nunique()}
        if by == "size":
            ok = g["params_b"].notna()
            if g.loc[ok, "params_b"].nunique() >= 2:
                rho, p = stats.spearmanr(g.loc[ok, "params_b"], g.loc[ok, "score"])
            else:
                rho, p = np.nan, np.nan
            row.update(test="Spearman", groups="params_b", statistic=rho, p=p, effect=rho, effect_name="rho")
        else:
            groups = {k: v["score"].to_numpy() for k, v in g.groupby(by, sort=True)}
            labels = " vs ".join(f"{k} (n={len(v)})" for k, v in groups.items())
            if len(groups) < 2:
                row.update(test="none (one group)", groups=labels, statistic=np.nan, p=np.nan, effect=np.nan)
            elif len(groups) == 2:
                (_, a), (_, b) = groups.items()
                u, p = stats.mannwhitneyu(a, b, alternative="two-sided")
                r = 2 * u / (len(a) * len(b)) - 1  # rank-biserial: P(a > b) - P(a < b)
                row.update(
                    test="Mann-Whitney U", groups=labels, statistic=u, p=p, effect=r, effect_name="rank-biserial"
                )
            else:
                h, p = stats.kruskal(*groups.values())
                eps2 = h / (len(g) - 1)
                row.update(
                    test="Kruskal-Wallis H", groups=labels, statistic=h, p=p, effect=eps2, effect_name="epsilon^2"
                )
            for k, v in groups.items():
                row[f"mean[{k}]"] = 100 * float(np.mean(v))
        rows.append(row)
    out = pd.DataFrame(rows)
    out["p_holm"] = _holm(out["p"].to_numpy())
    return out


def consistency(scored: pd.DataFrame) -> pd.DataFrame:
    """How consistent each model is: spread of its profile, and disagreement between its respondents.

    ``profile_sd``: SD of its six sub-dimension scores (0-100); ``respondent_sd``: mean over
    sub-dimensions of the SD of respondent-level scores (different decoding settings/seeds).
    """
    valid = scored[scored["valid"]]
    rows = []
    for model, g in valid.groupby("model", sort=False):
        by_sub = g.groupby("subdimension")["score"].mean() * 100
        resp = g.groupby(["subdimension", "respondent"])["score"].mean().unstack() * 100
        rows.append(
            {
                "model": model,
                "training_stage": g["training_stage"].iloc[0],
                "profile_sd": float(by_sub.std(ddof=1)) if len(by_sub) > 1 else np.nan,
                "respondent_sd": float(resp.std(axis=1, ddof=1).mean()) if resp.shape[1] > 1 else np.nan,
                "overall": float(g["score"].mean() * 100),
            }
        )
    return pd.DataFrame(rows)


def attach_reliability(scores: pd.DataFrame, gate: pd.DataFrame) -> pd.DataFrame:
    """``scores`` plus each score's reliability figures (``reliability.reliability_gate``) and ``reportable``.

    A dimension score is reportable when both of its sub-dimension scores are; its reliability
    columns are the smaller of the two.
    """
    g = gate.set_index(["model", "subdimension"])
    out = scores.copy()
    for column in ("panel_alpha", "icc2k", "reportable"):
        values = []
        for model, measure in zip(out["model"], out["measure"], strict=True):
            parts = DIMENSIONS.get(measure, (measure,))
            found = [g[column].get((model, p)) for p in parts]
            found = [v for v in found if v is not None and not (isinstance(v, float) and np.isnan(v))]
            if column == "reportable":
                values.append(bool(found) and len(found) == len(parts) and all(found))
            else:
                values.append(min(found) if len(found) == len(parts) else np.nan)
        out[column] = values
    return out


def _gated(verdict: str, models: list[str], measures: tuple[str, ...], scores: pd.DataFrame | None) -> tuple[str, str]:
    """(verdict, reliability) of a finding: not reported unless every score it rests on is reliable enough."""
    if scores is None or "reportable" not in scores.columns:
        return verdict, "no reliability figure"
    used = scores[scores["model"].isin(models) & scores["measure"].isin(measures)]
    n_ok, n = int(used["reportable"].sum()), len(used)
    figure = f"{n_ok} of {n} scores reliable (panel alpha and ICC2k >= 0.70)" if n else "rests on no score"
    if n == 0 or verdict.startswith("not testable"):
        return verdict, figure
    if n_ok < n:
        return f"not reported: unreliable scores (measured direction: {verdict})", figure
    return verdict, figure


def paper_findings(scores: pd.DataFrame, scored: pd.DataFrame) -> pd.DataFrame:
    """Check the paper's second-hand findings against these data; each row says what was measured.

    When ``scores`` carries reliability columns (``attach_reliability``), a finding whose scores do
    not all reach the reliability floor is not reported (its verdict says so and keeps the measured
    direction), and column ``reliability`` gives the figure; without them every row says
    "no reliability figure".
    """
    dims = score_matrix(scores, "dimension")
    meta = scores.drop_duplicates("model").set_index("model")
    cons = consistency(scored).set_index("model")
    stages = meta["training_stage"]
    rows = []

    scored_dims = dims.dropna(how="all")  # a model without one usable scored completion has no top dimension
    top = scored_dims.idxmax(axis=1)
    n_top = int((top == "Competence").sum())
    verdict = "supported" if n_top == len(scored_dims) else ("partly" if n_top else "not supported")
    models = list(scored_dims.index)
    rows.append(
        (
            "Competence is valued highest",
            f"Competence is the top dimension for {n_top} of {len(scored_dims)} models",
            *_gated(verdict, models, tuple(DIMENSIONS), scores),
        )
    )

    pre, ins = cons[stages == "pretrained"], cons[stages != "pretrained"]
    if len(pre) and len(ins):
        spread = f"profile SD: pretrained {pre['profile_sd'].mean():.1f} vs others {ins['profile_sd'].mean():.1f}"
        overall = f"overall score: pretrained {pre['overall'].mean():.1f} vs others {ins['overall'].mean():.1f}"
        lower = pre["overall"].max() < ins["overall"].min()
        flatter = pre["profile_sd"].mean() < ins["profile_sd"].mean()
        if lower and flatter:
            verdict = "supported (lower scores, flatter profile)"
        elif lower or flatter:
            verdict = "partly (" + ("lower scores, profile not flatter" if lower else "flatter profile only") + ")"
        else:
            verdict = "not supported"
        rows.append(
            (
                "Pretrained-only models show no clear value orientation",
                f"{overall}; {spread}",
                *_gated(verdict, models, SUBDIMENSIONS, scores),
            )
        )
        cons_ok = pre["respondent_sd"].mean() > ins["respondent_sd"].mean()
        rows.append(
            (
                "Instruction tuning makes dimensions more consistent",
                f"respondent SD: pretrained {pre['respondent_sd'].mean():.1f} vs instruct/aligned "
                f"{ins['respondent_sd'].mean():.1f}",
                *_gated("supported (direction only)" if cons_ok else "not supported", models, SUBDIMENSIONS, scores),
            )
        )
    else:
        for finding in (
            "Pretrained-only models show no clear value orientation",
            "Instruction tuning makes dimensions more consistent",
        ):
            rows.append((finding, "no pretrained model", *_gated("not testable", [], (), scores)))

    aligned, instruct = cons[stages == "aligned"], cons[stages == "instruct"]
    if len(aligned) and len(instruct):
        more = aligned["profile_sd"].mean() > instruct["profile_sd"].mean()
        rows.append(
            (
                "Alignment makes values more diverse",
                f"profile SD: aligned {aligned['profile_sd'].mean():.1f} ({len(aligned)} models) vs instruct "
                f"{instruct['profile_sd'].mean():.1f} ({len(instruct)} models)",
                *_gated("supported (direction only)" if more else "not supported", models, SUBDIMENSIONS, scores),
            )
        )
    else:
        why = (
            "no aligned model in the panel"
            if not len(aligned)
            else f"every chat model of the panel ({len(aligned)}) is preference-aligned; none is instruction-tuned only"
        )
        rows.append(("Alignment makes values more diverse", why, *_gated("not testable", [], (), scores)))

    lean = dims["Competence"] - dims[["Character", "Integrity"]].mean(axis=1)
    sized = meta["params_b"].reindex(lean.index).astype(float)
    ok = sized.notna() & lean.notna()
    if ok.sum() >= 3 and sized[ok].nunique() >= 3:
        rho, p = stats.spearmanr(sized[ok], lean[ok])
        verdict = (
            "not testable (fewer than 5 models)"
            if ok.sum() < 5
            else ("supported" if rho > 0 and p < 0.05 else "not supported")
        )
        rows.append(
            (
                "Larger models lean to Competence",
                f"Spearman rho(params, Competence - mean of others) = {rho:.2f} over {int(ok.sum())} models (p = {p:.2f})",
                *_gated(verdict, models, tuple(DIMENSIONS), scores),
            )
        )
    else:
        rows.append(
            ("Larger models lean to Competence", "fewer than 3 model sizes", *_gated("not testable", [], (), scores))
        )
    return pd.DataFrame(rows, columns=["finding", "measured", "verdict", "reliability"])
