"""Planted against recovered for every stage after the lexicon: EFA, CFA, semantic clusters, projective.

``recover(population, run)`` reads what a run of the simulated population wrote (notebooks 01-06;
a stage whose outputs are missing is said to be not run) and measures

* **EFA, pooled and within models**: the factor count the run chose (parallel analysis) and its
  bootstrap stability (recorded by notebook 03), and the Tucker congruence of recovered loadings
  with the planted ones (``words.csv``) after matching factors (Hungarian, reflected; ``efa.align``),
  on the rows of the planted words the lexicon recovered in a term of their own: (a) the run's own
  pooled solution (``efa_loadings.csv``), (b) the same matrix refitted here at the planted count,
  pooled and (c) within models (``efa.EFA(settings).fit(data, models)``, the run's within correlation), and
  (d) within models at the count the run chose there, when it differs;
* **CFA**: the planted taxonomy (each planted dimension with its ``cfa.max_indicators`` highest-loading
  recovered words used by at least ``efa.min_frequency`` of the respondents) fitted with the run's
  estimator: estimable, and its fit; and a **wrong taxonomy**, the same words dealt across the
  dimensions in turn (the i-th word of planted dimension d, by planted loading, goes to factor
  (d + i) mod 3, so each wrong factor holds about a third of every planted dimension and keeps its
  size), which must fit clearly worse (same degrees of freedom);
* **semantic clusters**: the adjusted Rand index of the run's main clustering (``semantic.k_main``)
  of the recovered planted terms with their planted dimensions, and the share placed nearest their
  planted dimension (and sub-dimension) by the embeddings;
* **projective**: the Spearman rank correlation of the run's model x sub-dimension scores
  (``projective_scores.csv``) with the planted stances' expected share of high completions
  (``stances.csv``), over all cells and per sub-dimension across models.

Each stage that loses structure gets a line saying which and why, from what was measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..core.display import Report, recorded
from ..psychometrics import cfa, efa
from .population import Population
from .recovery import FirstStagesRecovery, first_stages


def _congruence(planted: pd.DataFrame, recovered: pd.DataFrame) -> np.ndarray:
    """Per planted factor, |congruence| after matching (NaN for a planted factor left unmatched)."""
    rows = planted.index.intersection(recovered.index)
    _, matched = efa.align(planted.loc[rows].to_numpy(), recovered.loc[rows].to_numpy())
    return matched


def _extra_factors(
    planted: pd.DataFrame, loadings: pd.DataFrame, planted_terms: set[str], stability: list | None, cutoff: float
) -> list[dict[str, Any]]:
    """The recovered factors no planted factor matched: their top terms, share of planted terms, stability."""
    from scipy.optimize import linear_sum_assignment

    rows = planted.index.intersection(loadings.index)
    c = np.nan_to_num(efa.congruence(planted.loc[rows].to_numpy(), loadings.loc[rows].to_numpy()))
    _, matched = linear_sum_assignment(-np.abs(c))
    out = []
    for j, name in enumerate(loadings.columns):
        if j in set(matched):
            continue
        column = loadings[name]
        salient = column[column.abs() >= cutoff]
        top = column.reindex(column.abs().sort_values(ascending=False).index).head(6)
        out.append(
            {
                "factor": name,
                "bootstrap_median": stability[j] if stability and j < len(stability) else None,
                "planted_share": float(np.mean([t in planted_terms for t in salient.index])) if len(salient) else 0.0,
                "top": ", ".join(f"{t}{'' if t in planted_terms else '*'} {v:.2f}" for t, v in top.items()),
            }
        )
    return out


def _efa_row(level: str, count: str, k: int, words: int, matched: np.ndarray, factors: list[str]) -> dict:
    row: dict[str, Any] = {"level": level, "factor count": count, "k": k, "planted words": words}
    for f, c in zip(factors, matched, strict=True):
        row[f"congruence {f}"] = round(float(c), 3) if np.isfinite(c) else float("nan")
    row["min"] = round(float(np.nanmin(matched)), 3) if np.isfinite(matched).any() else float("nan")
    row["factors matched"] = int(np.isfinite(matched).sum())
    return row


def _short(fit: cfa.CFAFit) -> str:
    return "estimable" if fit.estimable else fit.status().split(";")[0].split(" (")[0]


def moved_taxonomy(assignment: dict[str, list[str]]) -> dict[str, list[str]]:
    """A third of the planted words moved: word i of factor d goes to factor d + 1 (mod k) when i % 3 == 2."""
    names = list(assignment)
    out: dict[str, list[str]] = {f"moved {name}": [] for name in names}
    for d, name in enumerate(names):
        for i, word in enumerate(assignment[name]):
            target = names[(d + 1) % len(names)] if i % 3 == 2 else name
            out[f"moved {target}"].append(word)
    return out


def wrong_taxonomy(assignment: dict[str, list[str]]) -> dict[str, list[str]]:
    """The planted words dealt across the factors in turn: word i of factor d goes to factor (d + i) mod k."""
    names = list(assignment)
    k = len(names)
    out: dict[str, list[str]] = {f"mixed {i + 1}": [] for i in range(k)}
    for d, name in enumerate(names):
        for i, word in enumerate(assignment[name]):
            out[f"mixed {(d + i) % k + 1}"].append(word)
    return out


@dataclass(repr=False)
class Recovery(Report):
    """Planted against recovered at every stage (see the module docstring); prints as tables."""

    first: FirstStagesRecovery | None  # None: notebooks 01-05 did not run (a projective-only run)
    efa_table: pd.DataFrame | None
    cfa_table: pd.DataFrame | None
    clusters: pd.DataFrame | None
    projective: pd.DataFrame
    summary: pd.DataFrame  # stage, measure, value
    lost: list[str] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)

    title = "Recovery of the planted population, every stage"

    def sections(self) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = [("Summary", self.summary.set_index(["stage", "measure"]))]
        if self.lost:
            out.append(("Where a stage loses the planted structure, and why (measured)", "\n".join(self.lost)))
        parts = [
            ("EFA: Tucker congruence with the planted loadings, after matching factors", self.efa_table),
            (
                "CFA: the planted taxonomy and two wrong ones (its words dealt across dimensions; a third moved)",
                self.cfa_table,
            ),
            ("Semantic clusters against the planted dimensions", self.clusters),
            ("Projective scores against the planted stances (Spearman)", self.projective),
        ]
        out += [(h, t) for h, t in parts if t is not None and len(t)]
        if self.first is not None:
            out += [(f"First stages. {h}", c) for h, c in self.first.sections()]
        return out

    def metrics(self) -> dict[str, Any]:
        return {**(self.first.metrics() if self.first is not None else {}), **self.numbers}


def _read(path: Path, **kw: Any) -> pd.DataFrame | None:
    return pd.read_csv(path, **kw) if path.exists() else None


def _elicitation_stages(
    population: Population, run: Any, folders: Any, numbers: dict, lost: list, summary: list
) -> tuple:
    """The first stages, EFA, CFA and clusters (notebooks 01-05 ran)."""
    processed, build = folders.processed, folders.build
    first = first_stages(population, processed, folders.raw, run.lexicon)
    factors = list(population.factors)
    words = population.words_table().set_index("word")
    planted = words[[f"loading_{f}" for f in factors]].set_axis(factors, axis=1)
    terms = {w: t for w, t in first.terms.items() if w in planted.index}
    incidence = pd.read_csv(processed / "incidence_respondent_binary.csv", index_col=0)
    sim = [r for r in incidence.index if r.split("|")[0] in population.models]
    incidence = incidence.loc[sim]
    models = pd.Series([r.split("|")[0] for r in incidence.index], index=incidence.index)
    planted_by_term = planted.rename(index=terms).loc[[terms[w] for w in terms]]

    # --- EFA -----------------------------------------------------------------------------
    s = run.efa
    efa_rows = []
    prepared = efa.prepare_matrix(incidence, s.coding, s.min_frequency, s.min_units, s.max_words)
    used = [t for t in planted_by_term.index if t in prepared.data.columns]
    planted_used = planted_by_term.loc[used]
    numbers["efa_planted_words"] = len(used)
    nb03 = build / "03_efa.ipynb"
    record = recorded(nb03) if nb03.exists() else {}
    run_loadings = _read(processed / "efa_loadings.csv", index_col=0)
    if run_loadings is not None:
        k_run = run_loadings.shape[1]
        m = _congruence(planted_used, run_loadings)
        efa_rows.append(_efa_row("pooled", "the run's (parallel analysis)", k_run, len(used), m, factors))
        numbers["efa_pooled_k"] = k_run
        numbers["efa_pooled_congruence_run"] = [round(float(v), 3) for v in m]
        stability = record.get("congruence_median")
        if stability:
            numbers["efa_pooled_bootstrap_median"] = stability
    corr = efa.correlation_matrix(prepared.data, method=s.correlation)
    pooled = efa.fit_efa(corr, len(factors), s)
    m_pooled = _congruence(planted_used, pooled.loadings)
    efa_rows.append(_efa_row("pooled", "planted", len(factors), len(used), m_pooled, factors))
    numbers["efa_pooled_congruence"] = [round(float(v), 3) for v in m_pooled]
    within = efa.EFA(replace(s, n_factors=len(factors))).fit(incidence, models, prepared=prepared)
    m_within = _congruence(planted_used, within.result.loadings)
    efa_rows.append(_efa_row("within models", "planted", len(factors), len(used), m_within, factors))
    numbers["efa_within_congruence"] = [round(float(v), 3) for v in m_within]
    k_within = record.get("within_factors")
    if k_within:
        numbers["efa_within_k"] = k_within
        numbers["efa_within_bootstrap_median"] = record.get("within_bootstrap_median")
        if k_within != len(factors):
            at_run = efa.EFA(replace(s, n_factors=int(k_within))).fit(incidence, models, prepared=prepared)
            m_run = _congruence(planted_used, at_run.result.loadings)
            efa_rows.append(_efa_row("within models", "the run's (parallel analysis)", k_within, len(used), m_run, factors))  # fmt: skip
            numbers["efa_within_congruence_run"] = [round(float(v), 3) for v in m_run]
    efa_table = pd.DataFrame(efa_rows).set_index(["level", "factor count"])
    n_units, n_models = len(incidence), models.nunique()
    summary.append({"stage": "EFA", "measure": "factor count chosen (pooled; within models)",
                    "value": f"{numbers.get('efa_pooled_k', '?')}; {k_within or '?'} (planted {len(factors)})"})  # fmt: skip
    # the count's spread over resamples or subsamples of the respondents (notebook 03, factor_count)
    counts = {"pooled": record.get("factor_count"), "within models": record.get("within_factor_count")}
    if any(counts.values()):
        numbers["efa_count_stability"] = {level: text for level, text in counts.items() if text}
        summary.append({"stage": "EFA", "measure": "factor count's spread over samples of the respondents (notebook 03)",
                        "value": "; ".join(f"{level}: {text}" for level, text in counts.items() if text)})  # fmt: skip
    summary.append({"stage": "EFA", "measure": "min congruence at the planted count, within models",
                    "value": round(float(np.nanmin(m_within)), 3)})  # fmt: skip
    summary.append({"stage": "EFA", "measure": "min congruence at the planted count, pooled",
                    "value": round(float(np.nanmin(m_pooled)), 3)})  # fmt: skip
    if k_within and k_within != len(factors):
        boot = record.get("within_bootstrap_median") or []
        fewer = k_within < len(factors)
        lost.append(
            f"EFA: parallel analysis within models keeps {k_within} factor(s), {len(factors)} were planted "
            f"({n_units} respondents of {n_models} models: {n_units - n_models} within-model degrees of freedom, "
            f"{prepared.n_words} words); bootstrap median congruence of the run's within-model factors {boot}; "
            + (f"the count's spread (notebook 03): {counts['within models']}; " if counts["within models"] else "")
            + f"at the planted count the within-model loadings reach min congruence {np.nanmin(m_within):.3f}"
            + (
                " (the planted structure is there; the extra factor is the unstable one)."
                if not fewer and np.nanmin(m_within) >= 0.9
                else " (too few respondents for the number of words: the loadings themselves are not recovered)."
                if np.nanmin(m_within) < 0.9
                else "."
            )
        )
    elif np.nanmin(m_within) < 0.9:  # the count is right, the loadings are not
        lost.append(
            f"EFA: parallel analysis within models keeps the planted {len(factors)} factor(s), but their loadings "
            f"reach min congruence {np.nanmin(m_within):.3f} only ({n_units} respondents of {n_models} models: "
            f"{n_units - n_models} within-model degrees of freedom, {prepared.n_words} words: too few respondents "
            "for the number of words to recover the loadings themselves)."
        )
    if numbers.get("efa_pooled_k") and numbers["efa_pooled_k"] > len(factors):
        extras = _extra_factors(planted_used, run_loadings, set(terms.values()), record.get("congruence_median"), s.cutoff)  # fmt: skip
        numbers["efa_pooled_extra_factors"] = extras
        shown = "; ".join(
            f"{e['factor']} (bootstrap median {e['bootstrap_median']}, {e['planted_share']:.0%} of its words planted: "
            f"{e['top']})"
            for e in extras
        )
        lost.append(
            f"EFA: the pooled parallel analysis keeps {numbers['efa_pooled_k']} factors ({len(factors)} planted); the "
            f"planted ones are found (congruence {numbers['efa_pooled_congruence_run']}); the others: {shown}. "
            "(* marks terms that are no planted word: non-values and fragments the lexicon kept, or a variant's "
            "second term.)"
        )

    # --- CFA -----------------------------------------------------------------------------
    share = incidence[list(planted_by_term.index)].mean()
    assignment: dict[str, list[str]] = {}
    for f in factors:
        own = planted_by_term[planted_by_term.idxmax(axis=1) == f][f].sort_values(ascending=False)
        own = own[share.reindex(own.index) >= s.min_frequency]
        assignment[f] = list(own.index[: run.cfa.max_indicators])
    data = incidence[[w for ws in assignment.values() for w in ws]]
    models_to_fit = [
        ("planted taxonomy", assignment),
        ("wrong taxonomy (dealt across)", wrong_taxonomy(assignment)),
        ("wrong taxonomy (a third moved)", moved_taxonomy(assignment)),
    ]
    fits = [cfa.fit_cfa(cfa.ModelSpec(n, f), data=data, estimator=run.cfa.estimator) for n, f in models_to_fit]
    cfa_rows = []
    for fit in fits:
        cfa_rows.append({
            "model": fit.name, "status": fit.status(), "N": fit.n_obs, "words": fit.n_words,
            "chi2": fit.chi2, "df": fit.df, "cfi": fit.cfi, "tli": fit.tli, "rmsea": fit.rmsea, "srmr": fit.srmr,
        })  # fmt: skip
    cfa_table = pd.DataFrame(cfa_rows).set_index("model").round(4)
    right, wrong, moved = fits
    numbers.update(
        cfa_planted_estimable=right.estimable, cfa_planted_cfi=round(right.cfi, 4), cfa_planted_rmsea=round(right.rmsea, 4),
        cfa_wrong_estimable=wrong.estimable, cfa_wrong_cfi=round(wrong.cfi, 4), cfa_wrong_rmsea=round(wrong.rmsea, 4),
        cfa_moved_estimable=moved.estimable, cfa_moved_cfi=round(moved.cfi, 4), cfa_moved_rmsea=round(moved.rmsea, 4),
        cfa_moved_chi2_excess=round(moved.chi2 - right.chi2, 2), cfa_words=right.n_words,
    )  # fmt: skip
    # rejected: not estimable (no admissible solution), or a clearly worse fit at the same degrees of freedom
    numbers["cfa_wrong_rejected"] = bool(not wrong.estimable or (wrong.chi2 > right.chi2 and wrong.cfi < right.cfi))
    numbers["cfa_moved_rejected"] = bool(not moved.estimable or (moved.chi2 > right.chi2 and moved.cfi < right.cfi))
    for label, fit in (("planted taxonomy", right), ("wrong: dealt across", wrong), ("wrong: a third moved", moved)):
        summary.append({"stage": "CFA", "measure": f"{label}: status, CFI, RMSEA",
                        "value": f"{_short(fit)}, {fit.cfi:.3f}, {fit.rmsea:.3f}"})  # fmt: skip
    if not right.estimable:
        lost.append(f"CFA: the planted taxonomy is not estimable here: {right.status()}")

    # --- semantic clusters ---------------------------------------------------------------
    clusters = pd.DataFrame()
    sem = _read(processed / "semantic_clusters.csv", keep_default_na=False)
    if sem is not None:
        from sklearn.metrics import adjusted_rand_score

        sem = sem.set_index("word")
        planted_dim = {t: population.dimension[w] for w, t in terms.items()}
        planted_sub = {t: population.subdimension[w] for w, t in terms.items()}
        here = [t for t in sem.index if t in planted_dim]
        col = f"cluster_k{run.semantic.k_main}"
        dims = [planted_dim[t] for t in here]
        ari = adjusted_rand_score(dims, sem.loc[here, col])
        nearest = float(np.mean([sem.at[t, "nearest_dimension"] == planted_dim[t] for t in here]))
        place = _read(processed / "taxonomy_placement.csv", keep_default_na=False)
        sub_share = float("nan")
        if place is not None:
            place = place.set_index("word")
            inside = [t for t in here if t in place.index]
            sub_share = float(np.mean([place.at[t, "subdimension"] == planted_sub[t] for t in inside]))
        k_col = f"cluster_k{len(population.spec.taxonomy) * 2}"
        ari_sub = adjusted_rand_score([planted_sub[t] for t in here], sem.loc[here, k_col]) if k_col in sem else float("nan")  # fmt: skip
        clusters = pd.DataFrame(
            [
                {"measure": f"ARI, {col} vs planted dimension", "terms": len(here), "value": round(ari, 3)},
                {"measure": f"ARI, {k_col} vs planted sub-dimension", "terms": len(here), "value": round(ari_sub, 3)},
                {"measure": "nearest dimension = planted dimension (share)", "terms": len(here), "value": round(nearest, 3)},
                {"measure": "placed sub-dimension = planted sub-dimension (share)", "terms": len(here), "value": round(sub_share, 3)},
            ]
        ).dropna().set_index("measure")  # fmt: skip
        numbers.update(clusters_ari=round(ari, 3), clusters_nearest_share=round(nearest, 3))
        summary.append({"stage": "clusters", "measure": "ARI with the planted dimensions; nearest-dimension share",
                        "value": f"{ari:.3f}; {nearest:.3f}"})  # fmt: skip
        if ari < 0.5:
            lost.append(
                f"Clusters: the main clustering agrees little with the planted dimensions (ARI {ari:.3f}): the "
                "clusters come from the words' embeddings, not from their co-occurrence, so they measure how the "
                "embedding model reads our vocabulary's assignment of words to dimensions "
                f"(nearest dimension right for {nearest:.0%} of the terms), not the planted co-occurrence."
            )

    return first, efa_table, cfa_table, clusters


def _projective_stage(
    population: Population,
    processed: Path,
    build: Path,
    numbers: dict,
    summary: list,
    raw: Path | None = None,
    lost: list | None = None,
) -> pd.DataFrame:
    """Model x sub-dimension scores against the planted stances (notebook 06 ran)."""
    # --- projective ----------------------------------------------------------------------
    projective = pd.DataFrame()
    scores = _read(processed / "projective_scores.csv", keep_default_na=False)
    if scores is not None:
        from scipy.stats import spearmanr

        scores = scores[(scores["level"] == "subdimension") & scores["model"].isin(population.models)]
        stances = population.stances_table().rename(columns={"subdimension": "measure"})
        cells = scores.merge(stances, on=["model", "measure"], how="inner")
        cells["score"] = pd.to_numeric(cells["score"], errors="coerce")
        rho_all = float(spearmanr(cells["score"], cells["expected_high_share"]).statistic)
        # each scorer has its own level per sub-dimension: ranks within each sub-dimension, pooled
        centred = cells.groupby("measure")["score"].rank(pct=True)
        rho_within = float(spearmanr(centred, cells.groupby("measure")["expected_high_share"].rank(pct=True)).statistic)
        rows = [
            {"cells": "all model x sub-dimension", "n": len(cells), "spearman": round(rho_all, 3)},
            {"cells": "all, ranked within each sub-dimension", "n": len(cells), "spearman": round(rho_within, 3)},
        ]
        for sub, part in cells.groupby("measure"):
            rho = float(spearmanr(part["score"], part["expected_high_share"]).statistic) if len(part) > 2 else float("nan")  # fmt: skip
            rows.append({"cells": f"{sub}, across models", "n": len(part), "spearman": round(rho, 3)})
        truth = None
        if raw is not None and (raw / "projective").exists():
            from .recovery import answers_truth

            truth = answers_truth(population, raw, "projective")
            truth["model"] = truth["respondent"].str.split("|").str[0]
            truth["subdimension"] = truth["truth"].map(lambda t: t["subdimension"])
            truth["shown"] = truth["truth"].map(lambda t: t["shown"])
        # every scorer the run wrote case scores for (the main one and the second), on the same completions
        for path in sorted(processed.glob("projective_scored_*.csv")):
            cases = pd.read_csv(path, keep_default_na=False)
            cases = cases[cases["model"].isin(population.models) & cases["valid"].astype(str).eq("True")]
            if not len(cases):
                continue
            cases["score"] = pd.to_numeric(cases["score"], errors="coerce")
            means = cases.groupby(["model", "subdimension"])["score"].mean().rename("mean").reset_index()
            means = means.merge(stances.rename(columns={"measure": "subdimension"}), on=["model", "subdimension"])
            name = path.stem.removeprefix("projective_scored_")
            ranked = spearmanr(
                means.groupby("subdimension")["mean"].rank(pct=True),
                means.groupby("subdimension")["expected_high_share"].rank(pct=True),
            ).statistic
            rows.append({"cells": f"{name} scorer, mean case score, all cells", "n": len(means),
                         "spearman": round(float(spearmanr(means["mean"], means["expected_high_share"]).statistic), 3)})  # fmt: skip
            rows.append({"cells": f"{name} scorer, mean case score, ranked within sub-dimensions", "n": len(means),
                         "spearman": round(float(ranked), 3)})  # fmt: skip
            numbers[f"projective_spearman_cases_{name}"] = rows[-2]["spearman"]
            numbers[f"projective_spearman_cases_within_{name}"] = rows[-1]["spearman"]
            if truth is not None:  # each case whose sub-dimension is its completion's planted target, high vs low
                from sklearn.metrics import roc_auc_score

                key = truth[["respondent", "prompt_id", "subdimension", "shown"]].rename(
                    columns={"prompt_id": "stem_id"}
                )
                judged = cases.merge(key, on=["respondent", "stem_id", "subdimension"])
                judged = judged[judged["shown"].isin(["high", "low"])]
                if judged["shown"].nunique() == 2:
                    auc = float(roc_auc_score(judged["shown"] == "high", judged["score"]))
                    rows.append({"cells": f"{name} scorer: ROC AUC of case scores, shown high vs low (cases)",
                                 "n": len(judged), "spearman": round(auc, 3)})  # fmt: skip
                    numbers[f"projective_case_auc_{name}"] = round(auc, 3)
        # the ceiling: the stance each completion shows (its planted truth), as a perfect scorer would read it
        if truth is not None:
            high = truth["shown"].map({"high": 1.0, "low": 0.0}).fillna(0.5)
            ceiling = high.groupby([truth["model"], truth["subdimension"]]).mean().rename("mean").reset_index()
            ceiling = ceiling.merge(stances.rename(columns={"measure": "subdimension"}), on=["model", "subdimension"])
            rho_ceiling = float(spearmanr(ceiling["mean"], ceiling["expected_high_share"]).statistic)
            rows.append({"cells": "ceiling: the stances the completions show (their truth)", "n": len(ceiling),
                         "spearman": round(rho_ceiling, 3)})  # fmt: skip
            numbers["projective_spearman_ceiling"] = round(rho_ceiling, 3)
            numbers["projective_completions"] = len(truth)
        projective = pd.DataFrame(rows).set_index("cells")
        nb06 = build / "06_projective.ipynb"
        scorer = recorded(nb06).get("scorer_used") if nb06.exists() else None
        numbers.update(projective_spearman=round(rho_all, 3), projective_scorer=scorer)
        numbers["projective_spearman_within"] = round(rho_within, 3)
        per_sub = projective[projective.index.str.endswith(", across models")]
        numbers["projective_spearman_min_subdimension"] = round(float(per_sub["spearman"].min()), 3)
        projective = projective.rename(columns={"spearman": "Spearman (AUC where said)"})
        ceiling_rho = numbers.get("projective_spearman_ceiling")
        auc = numbers.get(f"projective_case_auc_{scorer}")
        if lost is not None and ceiling_rho is not None and rho_all < min(0.8, ceiling_rho - 0.05):
            lost.append(
                f"Projective: the {scorer} scorer's model x sub-dimension scores rank {rho_all:.3f} with the planted "
                f"stances (ranked within sub-dimensions {rho_within:.3f}), where the stances the completions show "
                f"rank {ceiling_rho:.3f}: "
                + (
                    f"the loss is the scorer's reading of each completion (case ROC AUC {auc:.3f}, high against low)."
                    if auc is None or auc < 0.9
                    else f"the scorer tells high from low (case ROC AUC {auc:.3f}); the rest of the gap lies in its "
                    "scores within the high and the low cases and on neutral completions, averaged over about "
                    f"{round(float(scores['n_cases'].astype(float).mean()))} cases a cell (not separated here)."
                )
            )
        summary.append({"stage": "projective", "measure": f"Spearman, model x sub-dimension scores vs planted ({scorer})",
                        "value": f"{rho_all:.3f} (ranked within sub-dimensions {rho_within:.3f}; ceiling "
                                 f"{numbers.get('projective_spearman_ceiling', float('nan')):.3f})"})  # fmt: skip
    return projective


def recover(population: Population, run: Any) -> Recovery:  # noqa: ANN401 - a valuelex.stages.Run
    """The recovery report of a run of the simulated population (notebooks 01-06 ran): its settings and folders."""
    settings, folders = run.settings, run.folders
    processed, build = folders.processed, folders.build
    numbers: dict[str, Any] = {}
    lost: list[str] = []
    summary: list[dict[str, Any]] = []
    first = efa_table = cfa_table = clusters = None
    if (processed / "responses.csv").exists():
        first, efa_table, cfa_table, clusters = _elicitation_stages(
            population, settings, folders, numbers, lost, summary
        )
    projective = _projective_stage(population, processed, build, numbers, summary, folders.raw, lost)
    summary_table = pd.DataFrame(summary, columns=["stage", "measure", "value"])
    return Recovery(first, efa_table, cfa_table, clusters, projective, summary_table, lost, numbers)
