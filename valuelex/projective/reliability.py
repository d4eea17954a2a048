"""Reliability of the projective instrument: internal consistency, test-retest, agreement of scorers.

A projective score is a mean over stems and respondents (decoding settings). Three questions:

* **Internal consistency across stems.** Do the stems scored on a sub-dimension rank respondents
  alike? Cronbach's alpha and McDonald's omega on the respondents x stems matrix of case scores,
  as ``psych::alpha`` (raw and standardised alpha, Feldt 95% CI) and ``psych::omega(nfactors = 1,
  flip = FALSE)`` compute them (omega total = 1 - sum of uniquenesses / sum of R, from a one-factor
  minres fit of the pairwise correlations; stems are never reversed: every stem is scored in the
  direction of its sub-dimension).
* **Test-retest.** Does a model give the same stem the same score under another seed or
  temperature? Intraclass correlations with stems as targets and decoding settings as raters,
  as ``psych::ICC(lmer = FALSE)`` computes them (Shrout & Fleiss; McGraw & Wong's F-based CIs).
* **Agreement of two scorers** on the same cases: ICC(2,1) (absolute agreement) and ICC(3,1)
  (consistency), with the same CIs.

Our choice of gate (``RELIABILITY_FLOOR``): a model's sub-dimension score counts as a finding only
when the panel's internal consistency of that sub-dimension and the model's test-retest
reliability of the mean over its respondents (ICC2k) both reach 0.70 (Nunnally's usual floor for
research use); otherwise it is shown, with its reliability, but not interpreted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ..core.display import Report
from ..psychometrics.efa import extract
from .instrument import SUBDIMENSIONS, canonical_subdimension

#: Reliability a score needs before it is interpreted (our choice; Nunnally 1978's 0.70).
RELIABILITY_FLOOR = 0.70
#: Fewer subjects (rows) than this and a coefficient is flagged as not interpretable.
MIN_SUBJECTS = 10
ALPHA_LEVEL = 0.05


# ---------------------------------------------------------------------------------------------
# Coefficients (checked against R's psych in tests/test_projective_reliability.py)
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Alpha:
    """Cronbach's alpha as ``psych::alpha`` reports it."""

    raw_alpha: float
    std_alpha: float
    average_r: float
    feldt_low: float
    feldt_high: float
    n_subjects: int
    n_items: int


def cronbach_alpha(items: pd.DataFrame | np.ndarray, level: float = 1 - ALPHA_LEVEL) -> Alpha:
    """Alpha of a subjects x items matrix (pairwise-complete covariances, as ``psych::alpha``).

    Items without variance are dropped first (psych drops them too, with a warning).
    """
    x = pd.DataFrame(items).astype(float)
    x = x.loc[:, x.var(ddof=1) > 0]
    n, k = x.shape
    if k < 2 or n < 2:
        return Alpha(np.nan, np.nan, np.nan, np.nan, np.nan, n, k)
    c = x.cov().to_numpy()
    r = x.corr().to_numpy()
    raw = (1 - np.trace(c) / c.sum()) * k / (k - 1)
    std = (1 - k / r.sum()) * k / (k - 1)
    average_r = (r.sum() - k) / (k * (k - 1))
    p = 1 - level
    df1, df2 = n - 1, (n - 1) * (k - 1)
    high = 1 - (1 - raw) * stats.f.ppf(p / 2, df1, df2)
    low = 1 - (1 - raw) * stats.f.ppf(1 - p / 2, df1, df2)
    return Alpha(float(raw), float(std), float(average_r), float(low), float(high), n, k)


@dataclass(frozen=True)
class Omega:
    """McDonald's omega from a one-factor minres model (``psych::omega(nfactors = 1, flip = FALSE)``)."""

    omega_total: float
    omega_h: float
    loadings: tuple[float, ...]
    n_subjects: int
    n_items: int


def mcdonald_omega(items: pd.DataFrame | np.ndarray) -> Omega:
    """Omega total and (one-factor) omega hierarchical of a subjects x items matrix."""
    x = pd.DataFrame(items).astype(float)
    x = x.loc[:, x.var(ddof=1) > 0]
    n, k = x.shape
    if k < 3 or n < 3:
        return Omega(np.nan, np.nan, (), n, k)
    r = x.corr().to_numpy()
    if not np.isfinite(r).all():
        return Omega(np.nan, np.nan, (), n, k)  # some pair of stems shares fewer than two respondents
    loadings, _, _ = extract(r, 1, "minres")
    lam = loadings[:, 0]
    if lam.sum() < 0:
        lam = -lam
    uniqueness = 1 - lam**2
    total = 1 - uniqueness.sum() / r.sum()
    hierarchical = lam.sum() ** 2 / r.sum()
    return Omega(float(total), float(hierarchical), tuple(float(v) for v in lam), n, k)


@dataclass(frozen=True)
class ICC:
    """One intraclass correlation with its F test and CI, as a row of ``psych::ICC``'s table."""

    type: str
    icc: float
    f: float
    df1: float
    df2: float
    p: float
    low: float
    high: float


def icc_table(ratings: pd.DataFrame | np.ndarray, alpha: float = ALPHA_LEVEL) -> pd.DataFrame:
    """The six Shrout-Fleiss ICCs of a targets x raters matrix, as ``psych::ICC(x, lmer = FALSE)``.

    Rows with a missing rating are dropped first (psych refuses them with ``lmer = FALSE``); the
    table says how many targets were used (``n``).
    """
    x = pd.DataFrame(ratings).astype(float).dropna().to_numpy()
    n, k = x.shape
    empty = pd.DataFrame(
        [ICC(t, *(np.nan,) * 7).__dict__ for t in ("ICC1", "ICC2", "ICC3", "ICC1k", "ICC2k", "ICC3k")]
    ).assign(n=n, k=k)
    if n < 2 or k < 2:
        return empty
    grand = x.mean()
    ss_rows = k * ((x.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((x.mean(axis=0) - grand) ** 2).sum()
    ss_total = ((x - grand) ** 2).sum()
    ss_err = ss_total - ss_rows - ss_cols
    msb = ss_rows / (n - 1)
    msj = ss_cols / (k - 1)
    mse = ss_err / ((n - 1) * (k - 1))
    msw = (ss_cols + ss_err) / (n * (k - 1))
    if not np.isfinite(mse) or mse <= 0 or msw <= 0:
        return empty
    icc1 = (msb - msw) / (msb + (k - 1) * msw)
    icc2 = (msb - mse) / (msb + (k - 1) * mse + k * (msj - mse) / n)
    icc3 = (msb - mse) / (msb + (k - 1) * mse)
    icc1k = (msb - msw) / msb
    icc2k = (msb - mse) / (msb + (msj - mse) / n)
    icc3k = (msb - mse) / msb
    f11, df11n, df11d = msb / msw, n - 1, n * (k - 1)
    f21, df21n, df21d = msb / mse, n - 1, (n - 1) * (k - 1)
    p11 = stats.f.sf(f11, df11n, df11d)
    p21 = stats.f.sf(f21, df21n, df21d)
    q = 1 - alpha / 2
    f1l = f11 / stats.f.ppf(q, df11n, df11d)
    f1u = f11 * stats.f.ppf(q, df11d, df11n)
    f3l = f21 / stats.f.ppf(q, df21n, df21d)
    f3u = f21 * stats.f.ppf(q, df21d, df21n)
    fj = msj / mse
    vn = (k - 1) * (n - 1) * (k * icc2 * fj + n * (1 + (k - 1) * icc2) - k * icc2) ** 2
    vd = (n - 1) * k**2 * icc2**2 * fj**2 + (n * (1 + (k - 1) * icc2) - k * icc2) ** 2
    v = vn / vd
    f2u = stats.f.ppf(q, n - 1, v)
    f2l = stats.f.ppf(q, v, n - 1)
    denom = k * msj + (k * n - k - n) * mse
    l2 = n * (msb - f2u * mse) / (f2u * denom + n * msb)
    u2 = n * (f2l * msb - mse) / (denom + n * f2l * msb)
    rows = [
        ICC("ICC1", icc1, f11, df11n, df11d, p11, (f1l - 1) / (f1l + k - 1), (f1u - 1) / (f1u + k - 1)),
        ICC("ICC2", icc2, f21, df21n, df21d, p21, l2, u2),
        ICC("ICC3", icc3, f21, df21n, df21d, p21, (f3l - 1) / (f3l + k - 1), (f3u - 1) / (f3u + k - 1)),
        ICC("ICC1k", icc1k, f11, df11n, df11d, p11, 1 - 1 / f1l, 1 - 1 / f1u),
        ICC("ICC2k", icc2k, f21, df21n, df21d, p21, l2 * k / (1 + l2 * (k - 1)), u2 * k / (1 + u2 * (k - 1))),
        ICC("ICC3k", icc3k, f21, df21n, df21d, p21, 1 - 1 / f3l, 1 - 1 / f3u),
    ]
    return pd.DataFrame([r.__dict__ for r in rows]).assign(n=n, k=k)


def _icc(ratings: pd.DataFrame, which: str) -> dict[str, float]:
    row = icc_table(ratings).set_index("type").loc[which]
    return {"icc": float(row["icc"]), "low": float(row["low"]), "high": float(row["high"]), "n": int(row["n"])}


# ---------------------------------------------------------------------------------------------
# The instrument's reliability on a scored panel
# ---------------------------------------------------------------------------------------------
def _valid(scored: pd.DataFrame) -> pd.DataFrame:
    valid = scored[scored["valid"]].copy()
    valid["subdimension"] = valid["subdimension"].map(canonical_subdimension)
    return valid


def respondent_by_stem(scored: pd.DataFrame, subdimension: str, model: str | None = None) -> pd.DataFrame:
    """Respondents (rows) x stems (columns) matrix of case scores on one sub-dimension."""
    valid = _valid(scored)
    g = valid[valid["subdimension"] == subdimension]
    if model is not None:
        g = g[g["model"] == model]
    return g.pivot_table(index="respondent", columns="stem_id", values="score", aggfunc="mean")


def internal_consistency(scored: pd.DataFrame) -> pd.DataFrame:
    """Alpha and omega per sub-dimension: the whole panel, and each model on its own respondents."""
    rows = []
    models = list(dict.fromkeys(scored["model"]))
    for sub in SUBDIMENSIONS:
        for model in (None, *models):
            m = respondent_by_stem(scored, sub, model)
            if m.empty:
                continue
            a = cronbach_alpha(m)
            # a one-factor model of fewer respondents than MIN_SUBJECTS is not estimable in any useful sense
            o = mcdonald_omega(m) if len(m) >= MIN_SUBJECTS else Omega(np.nan, np.nan, (), len(m), m.shape[1])
            rows.append(
                {
                    "model": model or "all models",
                    "subdimension": sub,
                    "respondents": a.n_subjects,
                    "stems": a.n_items,
                    "alpha": a.raw_alpha,
                    "alpha_low": a.feldt_low,
                    "alpha_high": a.feldt_high,
                    "std_alpha": a.std_alpha,
                    "omega_total": o.omega_total,
                    "flag": "" if a.n_subjects >= MIN_SUBJECTS else f"only {a.n_subjects} respondents",
                }
            )
    return pd.DataFrame(rows)


def retest_reliability(scored: pd.DataFrame) -> pd.DataFrame:
    """Per model and sub-dimension: agreement of a stem's score across seeds and across temperatures.

    ``seed``: targets are (stem, temperature), raters the seeds; ``temperature``: targets are
    (stem, seed), raters the temperatures; ``all``: targets are stems, raters every respondent
    (ICC2 for one respondent, ICC2k for the mean over the model's respondents).
    """
    valid = _valid(scored)
    rows = []
    for (model, sub), g in valid.groupby(["model", "subdimension"], sort=False):
        row: dict[str, Any] = {"model": model, "subdimension": sub}
        for across, target in (("seed", "temperature"), ("temperature", "seed")):
            m = g.pivot_table(index=["stem_id", target], columns=across, values="score", aggfunc="mean")
            r = _icc(m, "ICC2") if m.shape[1] >= 2 else {"icc": np.nan, "low": np.nan, "high": np.nan, "n": 0}
            row.update({f"{across}_icc": r["icc"], f"{across}_low": r["low"], f"{across}_high": r["high"]})
        m = g.pivot_table(index="stem_id", columns="respondent", values="score", aggfunc="mean")
        one, mean = _icc(m, "ICC2"), _icc(m, "ICC2k")
        row.update(
            stems=one["n"],
            respondents=m.shape[1],
            icc2=one["icc"],
            icc2_low=one["low"],
            icc2_high=one["high"],
            icc2k=mean["icc"],
            icc2k_low=mean["low"],
            icc2k_high=mean["high"],
        )
        rows.append(row)
    out = pd.DataFrame(rows)
    order = {s: i for i, s in enumerate(SUBDIMENSIONS)}
    return out.sort_values(["model", "subdimension"], key=lambda c: c.map(order) if c.name == "subdimension" else c)


def scorer_agreement(a: pd.DataFrame, b: pd.DataFrame, key: tuple[str, ...] = ("key", "subdimension")) -> pd.DataFrame:
    """Per model and sub-dimension (and overall): ICC(2,1) and ICC(3,1) of two scorers' case scores."""
    k = list(key)
    both = a[a["valid"]][[*k, "model", "score"]].merge(b[b["valid"]][[*k, "score"]], on=k, suffixes=("_a", "_b"))
    rows = []
    groups = [(("all models", "all"), both)] + list(both.groupby(["model", "subdimension"], sort=False))
    for (model, sub), g in groups:
        m = g[["score_a", "score_b"]]
        absolute, consistent = _icc(m, "ICC2"), _icc(m, "ICC3")
        rho = stats.spearmanr(m["score_a"], m["score_b"]).statistic if len(m) > 2 else np.nan
        rows.append(
            {
                "model": model,
                "subdimension": sub,
                "cases": len(m),
                "icc_agreement": absolute["icc"],
                "icc_agreement_low": absolute["low"],
                "icc_agreement_high": absolute["high"],
                "icc_consistency": consistent["icc"],
                "icc_consistency_low": consistent["low"],
                "icc_consistency_high": consistent["high"],
                "spearman": float(rho),
            }
        )
    return pd.DataFrame(rows)


def reliability_gate(consistency: pd.DataFrame, retest: pd.DataFrame, floor: float = RELIABILITY_FLOOR) -> pd.DataFrame:
    """Per model and sub-dimension: the two reliability figures and whether the score may be interpreted."""
    panel = consistency[consistency["model"] == "all models"].set_index("subdimension")["alpha"]
    out = retest[["model", "subdimension", "icc2k", "icc2k_low", "icc2k_high"]].copy()
    out["panel_alpha"] = out["subdimension"].map(panel)
    ok = (out["panel_alpha"] >= floor) & (out["icc2k"] >= floor)
    out["reportable"] = ok.fillna(False).astype(bool)
    return out.reset_index(drop=True)


@dataclass(repr=False)  # a console shows the report, not the dataclass
class Reliability(Report):
    """The instrument's reliability on one scored panel (and, optionally, against a second scorer)."""

    consistency: pd.DataFrame
    retest: pd.DataFrame
    agreement: pd.DataFrame | None = None
    floor: float = RELIABILITY_FLOOR
    gate: pd.DataFrame = field(init=False)
    title: str = "Reliability of the projective scores"

    def __post_init__(self) -> None:
        self.gate = reliability_gate(self.consistency, self.retest, self.floor)

    def sections(self) -> list[tuple[str, Any]]:
        panel = self.consistency[self.consistency["model"] == "all models"].drop(columns="model")
        parts: list[tuple[str, Any]] = [
            ("Internal consistency across stems (respondents x stems, whole panel)", panel.set_index("subdimension")),
            (
                "Test-retest (ICC2: one respondent; ICC2k: the mean over a model's respondents)",
                self.retest.set_index(["model", "subdimension"]),
            ),
        ]
        if self.agreement is not None:
            parts.append(("Agreement of the two scorers", self.agreement.set_index(["model", "subdimension"])))
        n_ok = int(self.gate["reportable"].sum())
        parts.append(
            (
                f"Which scores may be interpreted (panel alpha and ICC2k >= {self.floor:.2f})",
                f"{n_ok} of {len(self.gate)} model x sub-dimension scores reach the floor.",
            )
        )
        return parts

    def metrics(self) -> dict[str, Any]:
        panel = self.consistency[self.consistency["model"] == "all models"].set_index("subdimension")
        out: dict[str, Any] = {
            "alpha": {s: round(float(v), 4) for s, v in panel["alpha"].items()},
            "omega_total": {s: round(float(v), 4) for s, v in panel["omega_total"].items()},
            "icc2k": {
                f"{m}|{s}": round(float(v), 4)
                for m, s, v in self.retest[["model", "subdimension", "icc2k"]].itertuples(index=False)
            },
            "reportable": int(self.gate["reportable"].sum()),
        }
        if self.agreement is not None:
            overall = self.agreement.iloc[0]
            out["agreement_icc"] = round(float(overall["icc_agreement"]), 4)
            out["agreement_spearman"] = round(float(overall["spearman"]), 4)
        return out


def assess_reliability(scored: pd.DataFrame, second: pd.DataFrame | None = None) -> Reliability:
    """All reliability figures of a scored panel; ``second`` is another scorer's scores of the same cases."""
    agreement = scorer_agreement(scored, second) if second is not None else None
    return Reliability(internal_consistency(scored), retest_reliability(scored), agreement)
