"""Confirmatory factor analysis of value-word co-occurrence (notebook 04), with semopy.

Models are built from ``{factor: [words]}`` mappings: the paper's taxonomy (3 dimensions,
6 sub-dimensions, 6 sub-dimensions under 3 second-order dimensions) with the taxonomy's
example words as markers (``configs/taxonomy.yaml``), the model the EFA suggests, and a
one-factor baseline on the same words. semopy estimates them (objective ``MLW``, which is
lavaan's ML); the fit indices are computed here as lavaan computes them, because semopy
lacks some (RMSEA interval, SRMR) and computes others differently (its RMSEA divides by
N - 1, lavaan's by N; its AIC/BIC are on another scale, so we do not report them):
chi2 = N * F_ML, CFI and TLI against the independence model, RMSEA with its 90% interval
from the noncentral chi-square, SRMR (lavaan's ``srmr``, Bentler's, no mean structure), all from
:mod:`.indices`, which the WLSMV fit (:mod:`.wlsmv`) reports too.
``tests/test_cfa.py`` checks them against lavaan on Holzinger & Swineford (1939).
"""

# Over 600 lines: the ML CFA: the models built from a taxonomy and from the EFA, the fit (semopy), lavaan's
# standardised solution and the report; fit indices live in cfa/indices.py, WLSMV in cfa/wlsmv.py.

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from ...core.display import Report
from . import wlsmv
from .indices import cfi, rmsea, rmsea_interval, srmr, tli

#: Hu & Bentler (1999) cut-offs for good fit.
HU_BENTLER = {"cfi": (">=", 0.95), "tli": (">=", 0.95), "rmsea": ("<=", 0.06), "srmr": ("<=", 0.08)}
#: Rules of thumb we apply to call a CFA sample adequate: at least 200 units (e.g. Kline) and at
#: least 5 units per free parameter (Bentler & Chou, 1987). Below either, the table says so.
MIN_N = 200
MIN_UNITS_PER_PARAMETER = 5
#: Fewer indicators than this and a factor is left out of a model (2 is the minimum for a factor
#: that correlates with others; 3 for a factor standing alone).
MIN_INDICATORS = 2
#: The EFA-derived model uses at most this many words per factor (those with the largest loadings).
DEFAULT_MAX_INDICATORS = 8


# ------------------------------------------------------------------------------------------
# The taxonomy and its markers
# ------------------------------------------------------------------------------------------
def _norm(word: str) -> str:
    return re.sub(r"\s+", " ", str(word).strip().lower())


def taxonomy_markers(taxonomy: dict, data: pd.DataFrame) -> pd.DataFrame:
    """Which of the taxonomy's example words are columns of ``data`` (case-insensitive, any listed form).

    One row per marker: dimension, sub-dimension, marker, the lexicon word used (the most
    frequent of its forms present), the number of units using it, and ``present``.
    """
    columns = {_norm(c): c for c in data.columns}
    counts = (data > 0).sum(axis=0)
    rows = []
    for dimension, subs in taxonomy["dimensions"].items():
        for sub, markers in subs.items():
            for item in markers:
                forms = [item["marker"], *item.get("variants", [])]
                found = [columns[_norm(f)] for f in forms if _norm(f) in columns]
                word = max(found, key=lambda w: (counts[w], w)) if found else None
                rows.append(
                    {
                        "dimension": dimension,
                        "subdimension": sub,
                        "marker": item["marker"],
                        "forms": ", ".join(forms),
                        "word": word,
                        "units": int(counts[word]) if word else 0,
                        "present": word is not None,
                    }
                )
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------
# Model specifications
# ------------------------------------------------------------------------------------------
@dataclass
class ModelSpec:
    """A CFA model: first-order factors with their words, optional second-order factors."""

    name: str
    factors: dict[str, list[str]]
    higher_order: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def words(self) -> list[str]:
        return [w for ws in self.factors.values() for w in ws]

    def identified(self) -> tuple[bool, str]:
        """A rough identification check: enough indicators per factor and first-order factors per
        second-order factor (the t-rule and these counts; not a full algebraic proof)."""
        if not self.factors:
            return False, "no factor has enough indicators"
        alone = len(self.factors) == 1
        for f, ws in self.factors.items():
            need = 3 if alone else MIN_INDICATORS
            if len(ws) < need:
                return False, f"factor {f} has {len(ws)} indicator(s), needs {need}"
        for g, fs in self.higher_order.items():
            if len(fs) < 2:
                return False, f"second-order factor {g} has {len(fs)} first-order factor(s), needs 2"
        if self.higher_order and len(self.higher_order) == 1 and len(self.factors) < 3:
            return False, "a single second-order factor needs at least 3 first-order factors"
        p = len(self.words)
        if p * (p + 1) // 2 < self.n_free_parameters():
            return False, "more free parameters than variances and covariances"
        return True, ""

    def n_free_parameters(self) -> int:
        """Loadings (one fixed per factor), residual variances, factor (co)variances."""
        p, k = len(self.words), len(self.factors)
        count = (p - k) + p
        if self.higher_order:
            g = len(self.higher_order)
            count += (k - g) + k + g + g * (g - 1) // 2  # 2nd-order loadings, disturbances, their (co)variances
        else:
            count += k * (k + 1) // 2
        return count


def identifier(name: str, prefix: str = "") -> str:
    """A semopy-safe variable name for a word or factor."""
    safe = re.sub(r"[^0-9A-Za-z]+", "_", str(name)).strip("_") or "x"
    return f"{prefix}{safe}"


def model_syntax(spec: ModelSpec) -> tuple[str, dict[str, str]]:
    """lavaan-style syntax for semopy, and the word -> identifier map used in it."""
    names: dict[str, str] = {}
    for w in spec.words:
        base = identifier(w, "w_")
        candidate, i = base, 2
        while candidate in names.values():
            candidate, i = f"{base}_{i}", i + 1
        names[w] = candidate
    lines = [f"{identifier(f, 'f_')} =~ " + " + ".join(names[w] for w in ws) for f, ws in spec.factors.items()]
    for g, fs in spec.higher_order.items():
        lines.append(f"{identifier(g, 'g_')} =~ " + " + ".join(identifier(f, "f_") for f in fs))
    return "\n".join(lines), names


def _usable(words: list[str], data: pd.DataFrame) -> list[str]:
    return [w for w in dict.fromkeys(words) if w in data.columns]


def taxonomy_models(markers: pd.DataFrame, data: pd.DataFrame) -> list[ModelSpec]:
    """The paper's three taxonomy models on the markers present in ``data``.

    ``taxonomy: 3 dimensions`` (markers pooled by dimension), ``taxonomy: 6 sub-dimensions``,
    and ``taxonomy: 6 under 3`` (sub-dimensions loading on second-order dimensions). Factors with
    fewer than two markers present are left out, and the models note which.
    """
    present = markers[markers["present"] & markers["word"].isin(data.columns)]
    specs = []
    dims: dict[str, list[str]] = {}
    notes3 = []
    for dim in markers["dimension"].unique():
        words = _usable(present.loc[present["dimension"] == dim, "word"].tolist(), data)
        if len(words) >= MIN_INDICATORS:
            dims[dim] = words
        else:
            notes3.append(f"{dim} left out: {len(words)} marker(s) present")
    specs.append(ModelSpec("taxonomy: 3 dimensions", dims, notes=notes3))

    subs: dict[str, list[str]] = {}
    notes6 = []
    for sub in markers["subdimension"].unique():
        words = _usable(present.loc[present["subdimension"] == sub, "word"].tolist(), data)
        if len(words) >= MIN_INDICATORS:
            subs[sub] = words
        else:
            notes6.append(f"{sub} left out: {len(words)} marker(s) present")
    specs.append(ModelSpec("taxonomy: 6 sub-dimensions", subs, notes=notes6))

    parent = markers.drop_duplicates("subdimension").set_index("subdimension")["dimension"]
    higher: dict[str, list[str]] = {}
    for sub in subs:
        higher.setdefault(parent[sub], []).append(sub)
    notes2 = list(notes6)
    for dim, fs in list(higher.items()):
        if len(fs) < 2:
            notes2.append(f"{dim} has {len(fs)} sub-dimension(s) with markers: no second-order factor possible")
    specs.append(ModelSpec("taxonomy: 6 under 3 (second order)", subs, higher, notes=notes2))
    return specs


def marker_factors(markers: pd.DataFrame, word_factors: pd.DataFrame) -> pd.DataFrame:
    """Where the taxonomy's markers land in the EFA: one row per marker present, with its EFA factor,
    loading and whether it reaches the cut-off. Helps to name the EFA factors and to see whether
    markers of one dimension share a factor."""
    present = markers[markers["present"]]
    table = present.merge(word_factors[["word", "factor", "loading", "assigned"]], on="word", how="left")
    return table[["dimension", "subdimension", "marker", "word", "factor", "loading", "assigned"]]


def efa_model(
    word_factors: pd.DataFrame, data: pd.DataFrame, max_indicators: int = DEFAULT_MAX_INDICATORS
) -> ModelSpec:
    """The model the EFA suggests: each factor measured by its assigned words (``assigned`` True in
    ``efa_word_factors.csv``), at most ``max_indicators`` per factor, those with the largest loadings."""
    table = word_factors[word_factors["assigned"] & word_factors["word"].isin(data.columns)].copy()
    table["abs"] = table["loading"].abs()
    factors, notes = {}, []
    for f, part in table.groupby("factor", sort=True):
        words = part.sort_values("abs", ascending=False)["word"].head(max_indicators).tolist()
        if len(words) >= MIN_INDICATORS:
            factors[str(f)] = words
        else:
            notes.append(f"{f} left out: {len(words)} assigned word(s)")
    if len(table) > sum(len(w) for w in factors.values()):
        notes.append(f"at most {max_indicators} words per factor (largest loadings)")
    return ModelSpec(f"EFA-derived ({len(factors)} factors)", factors, notes=notes)


def one_factor_model(words: list[str], name: str = "one factor (baseline)") -> ModelSpec:
    """Every word on a single factor: the baseline a multi-factor model has to beat on the same words."""
    return ModelSpec(name, {"General": list(dict.fromkeys(words))})


def split_units(data: pd.DataFrame, fraction: float = 0.5, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Random split of the units (rows) into an exploration part (EFA) and a confirmation part (CFA)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(data))
    cut = int(round(len(data) * fraction))
    return data.iloc[np.sort(order[:cut])], data.iloc[np.sort(order[cut:])]


# ------------------------------------------------------------------------------------------
# Fit indices, as lavaan computes them
# ------------------------------------------------------------------------------------------
def ml_discrepancy(sample_cov: np.ndarray, implied_cov: np.ndarray) -> float:
    """F_ML = log|Sigma| + tr(S Sigma^-1) - log|S| - p."""
    p = sample_cov.shape[0]
    _, logdet_sigma = np.linalg.slogdet(implied_cov)
    _, logdet_s = np.linalg.slogdet(sample_cov)
    return float(logdet_sigma + np.trace(np.linalg.solve(implied_cov, sample_cov)) - logdet_s - p)


def sample_size_verdict(n_obs: int, n_parameters: int) -> tuple[bool, str]:
    """Whether N is large enough for a stable CFA by our rules of thumb, and a sentence saying so."""
    ratio = n_obs / max(n_parameters, 1)
    if n_obs >= MIN_N and ratio >= MIN_UNITS_PER_PARAMETER:
        return True, f"N = {n_obs} ({ratio:.1f} units per free parameter): adequate by our rules of thumb"
    return False, (
        f"N = {n_obs} is too small for a stable CFA of this model ({n_parameters} free parameters, "
        f"{ratio:.1f} units per parameter; we ask for N >= {MIN_N} and >= {MIN_UNITS_PER_PARAMETER} per parameter): "
        "treat its fit indices as indicative only"
    )


# ------------------------------------------------------------------------------------------
# Fitting
# ------------------------------------------------------------------------------------------
#: Estimators: ``WLSMV`` (lavaan's default for ordered indicators: thresholds, polychoric
#: correlations, DWLS, mean-and-variance adjusted test; ``valuelex.psychometrics.cfa.wlsmv``) and ``ML`` (normal-theory
#: maximum likelihood on the covariance matrix, semopy's ``MLW`` = lavaan's ML). ``auto`` is our
#: default: WLSMV when every indicator takes a few integer values (binary or ordinal data), ML otherwise.
ESTIMATORS = ("auto", "WLSMV", "ML")
#: ``auto`` treats an indicator with at most this many distinct integer values as ordered categories.
MAX_ORDERED_CATEGORIES = 10
#: The fit indices reported per estimator, in the comparison table's columns (lavaan's names): for WLSMV
#: the scaled (mean-and-variance adjusted) versions and Savalei's robust ones, for ML the standard ones.
HEADLINE = {
    "WLSMV": {
        "chi2": "chisq.scaled",
        "p": "pvalue.scaled",
        "CFI": "cfi.scaled",
        "TLI": "tli.scaled",
        "RMSEA": "rmsea.scaled",
        "RMSEA_lo90": "rmsea.ci.lower.scaled",
        "RMSEA_hi90": "rmsea.ci.upper.scaled",
        "SRMR": "srmr",
        "CFI_robust": "cfi.robust",
        "TLI_robust": "tli.robust",
        "RMSEA_robust": "rmsea.robust",
    },
    "ML": {
        "chi2": "chisq",
        "p": "pvalue",
        "CFI": "cfi",
        "TLI": "tli",
        "RMSEA": "rmsea",
        "RMSEA_lo90": "rmsea.ci.lower",
        "RMSEA_hi90": "rmsea.ci.upper",
        "SRMR": "srmr",
    },
}


def choose_estimator(data: pd.DataFrame | None, words: list[str], estimator: str = "auto") -> str:
    """The estimator to use: ``WLSMV`` or ``ML`` as asked; for ``auto``, WLSMV when every indicator
    column of ``data`` holds at most ``MAX_ORDERED_CATEGORIES`` distinct integer values, else ML."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, not {estimator!r}")
    if estimator != "auto":
        return estimator
    if data is None:
        return "ML"
    values = data[words].to_numpy(float)
    integer = np.all(np.isfinite(values)) and np.all(values == np.round(values))
    few = all(data[w].nunique() <= MAX_ORDERED_CATEGORIES for w in words)
    return "WLSMV" if integer and few else "ML"


@dataclass(repr=False)  # a console shows the report, not the dataclass
class CFAFit(Report):
    """One fitted confirmatory model: fit indices under lavaan's names, estimates, and whether the
    solution is admissible. A model that was not fitted (``error``) or is not estimable (``problems``:
    not converged, a negative variance, a latent covariance matrix that is not positive definite,
    probably not identified) has its fit indices withheld: they are NaN and never shown."""

    name: str
    n_obs: int
    n_words: int
    n_factors: int
    n_parameters: int
    estimator: str = "ML"
    chi2: float = float("nan")
    df: float = float("nan")
    p_value: float = float("nan")
    cfi: float = float("nan")
    tli: float = float("nan")
    rmsea: float = float("nan")
    rmsea_lower: float = float("nan")
    rmsea_upper: float = float("nan")
    srmr: float = float("nan")
    cfi_robust: float = float("nan")
    tli_robust: float = float("nan")
    rmsea_robust: float = float("nan")
    converged: bool = False
    heywood: list[str] = field(default_factory=list)
    n_adequate: bool = False
    error: str = ""
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    measures: dict[str, float] = field(default_factory=dict)  # lavaan's fitMeasures names
    estimates: pd.DataFrame | None = None  # lavaan's parameterEstimates: lhs, op, rhs, est, se, std_all
    names: dict[str, str] = field(default_factory=dict)  # model identifier -> word or factor

    @property
    def title(self) -> str:  # type: ignore[override]
        return f"CFA ({self.estimator}): {self.name}"

    @property
    def estimable(self) -> bool:
        """Fitted, converged and admissible: only then are the fit indices reported."""
        return bool(not self.error and self.converged and not self.problems)

    def status(self) -> str:
        if self.error:
            return self.error
        if not self.estimable:
            return "not estimable: " + "; ".join(self.problems or ["the optimiser did not converge"])
        return "estimable"

    def row(self) -> dict:
        return {
            "model": self.name,
            "estimator": self.estimator,
            "N": self.n_obs,
            "words": self.n_words,
            "factors": self.n_factors,
            "parameters": self.n_parameters,
            "estimable": self.estimable,
            "chi2": self.chi2,
            "df": self.df,
            "p": self.p_value,
            "CFI": self.cfi,
            "TLI": self.tli,
            "RMSEA": self.rmsea,
            "RMSEA_lo90": self.rmsea_lower,
            "RMSEA_hi90": self.rmsea_upper,
            "SRMR": self.srmr,
            "CFI_robust": self.cfi_robust,
            "TLI_robust": self.tli_robust,
            "RMSEA_robust": self.rmsea_robust,
            "good_fit_HB": self.good_fit(),
            "converged": self.converged,
            "heywood": ", ".join(self.heywood),
            "N_adequate": self.n_adequate,
            "notes": "; ".join(([self.status()] if not self.estimable else []) + self.notes),
        }

    def meets(self) -> dict[str, bool]:
        """Which Hu & Bentler cut-offs the model meets (the headline indices: scaled for WLSMV)."""
        values = {"cfi": self.cfi, "tli": self.tli, "rmsea": self.rmsea, "srmr": self.srmr}
        out = {}
        for k, (op, cut) in HU_BENTLER.items():
            v = values[k]
            out[k] = bool(np.isfinite(v) and (v >= cut if op == ">=" else v <= cut))
        return out

    def good_fit(self) -> bool:
        return bool(self.estimable and all(self.meets().values()))

    def sections(self) -> list[tuple[str, object]]:
        model = {
            "estimator": self.estimator,
            "units (N)": self.n_obs,
            "indicators": self.n_words,
            "factors": self.n_factors,
            "free parameters": self.n_parameters,
            "degrees of freedom": self.df,
            "status": self.status(),
        }
        out: list[tuple[str, object]] = [("Model", model)]
        if self.estimable:
            names = HEADLINE[self.estimator]
            shown = ["chisq", "df", "pvalue", *names.values()]
            out.append(("Fit (lavaan's names)", {k: self.measures.get(k, float("nan")) for k in dict.fromkeys(shown)}))
        else:
            out.append(("Fit", "withheld: " + self.status()))
        table = loadings(self)
        if len(table) and self.estimable:
            out.append(("Loadings", table))
        elif len(table):
            out.append(("Loadings", "withheld with the fit: an inadmissible solution's estimates describe no model"))
        if self.notes:
            out.append(("Notes", "\n".join(self.notes)))
        return out

    def metrics(self) -> dict:
        return {"estimable": self.estimable, "status": self.status(), **(self.measures if self.estimable else {})}


def _lavaan_table(estimates: pd.DataFrame) -> pd.DataFrame:
    """semopy's ``inspect(std_est=True)`` as lavaan's parameter table (lhs, op, rhs, est, se, std_all):
    semopy's ``indicator ~ factor`` rows become ``factor =~ indicator``."""
    table = pd.DataFrame(
        {
            "lhs": estimates["lval"].astype(str),
            "op": estimates["op"],
            "rhs": estimates["rval"].astype(str),
            "est": pd.to_numeric(estimates["Estimate"], errors="coerce"),
            "se": pd.to_numeric(estimates["Std. Err"], errors="coerce"),
            "std_all": pd.to_numeric(estimates["Est. Std"], errors="coerce"),
        }
    )
    table = table[table["op"].isin(["~", "~~"])].reset_index(drop=True)
    loads = table["op"] == "~"
    table.loc[loads, ["lhs", "rhs"]] = table.loc[loads, ["rhs", "lhs"]].to_numpy()
    table.loc[loads, "op"] = "=~"
    return table


def _heywood_cases(estimates: pd.DataFrame) -> list[str]:
    """Variables with an improper solution: a variance at or below zero (semopy keeps variances at or
    above 0, so a Heywood case shows as a variance stuck at the bound) or a standardised loading >= 1."""
    variances = estimates[(estimates["op"] == "~~") & (estimates["lhs"] == estimates["rhs"])]
    cases = set(variances.loc[variances["est"] <= 1e-6, "lhs"].astype(str))
    loads = estimates[estimates["op"] == "=~"]
    cases |= set(loads.loc[loads["std_all"].abs() >= 0.999, "rhs"].astype(str))
    return sorted(cases)


def _latent_not_positive_definite(estimates: pd.DataFrame, latent: list[str]) -> bool:
    """lavaan's post check: is the covariance matrix of the (exogenous) latent variables not positive definite?"""
    covs = estimates[(estimates["op"] == "~~") & estimates["lhs"].isin(latent) & estimates["rhs"].isin(latent)]
    names = sorted(set(covs["lhs"]) | set(covs["rhs"]))
    if len(names) < 2:
        return False
    matrix = pd.DataFrame(0.0, index=names, columns=names)
    for row in covs.itertuples():
        matrix.loc[row.lhs, row.rhs] = matrix.loc[row.rhs, row.lhs] = row.est
    return bool(np.linalg.eigvalsh(matrix.to_numpy()).min() < -(np.finfo(float).eps ** 0.75))


def fit_cfa(
    spec: ModelSpec,
    data: pd.DataFrame | None = None,
    cov: pd.DataFrame | None = None,
    n_obs: int | None = None,
    estimator: str = "auto",
) -> CFAFit:
    """Fit one model by WLSMV (ordered indicators, from raw ``data``) or ML (semopy ``MLW``, lavaan's
    ML; from ``data`` or a covariance matrix ``cov`` with ``n_obs``). ``estimator="auto"``: see
    :func:`choose_estimator`.

    Never raises for estimation problems: an unidentified model, an optimiser error, non-convergence,
    a Heywood case or a latent covariance matrix that is not positive definite is recorded, and the
    fit indices of such a model are withheld.
    """
    if (data is None) == (cov is None):
        raise ValueError("give either data or cov (with n_obs)")
    words = spec.words
    n = int(len(data) if data is not None else n_obs)
    k = len(spec.factors) + len(spec.higher_order)
    q = spec.n_free_parameters()
    if data is not None:
        missing = [w for w in words if w not in data.columns]
        if missing:
            raise ValueError(f"model {spec.name!r}: words not in the data: {', '.join(missing[:5])}")
    chosen = choose_estimator(data, words, estimator) if words else "ML"
    if chosen == "WLSMV" and data is None:
        raise ValueError("WLSMV needs the raw data (thresholds and polychoric correlations), not a covariance matrix")
    result = CFAFit(spec.name, n, len(words), k, q, estimator=chosen, notes=list(spec.notes))
    ok, why = spec.identified()
    if not ok:
        result.error = f"not fitted: {why}"
        return result
    result.n_adequate, verdict = sample_size_verdict(n, q)
    if not result.n_adequate:
        result.notes.append(verdict)
    if data is not None and (data[words].astype(float).var(ddof=0) <= 0).any():
        result.error = "not fitted: a word does not vary in these units"
        return result
    if chosen == "WLSMV":
        return _fit_wlsmv(spec, data, result)
    return _fit_ml(spec, data, cov, result)


def _fit_wlsmv(spec: ModelSpec, data: pd.DataFrame, result: CFAFit) -> CFAFit:
    try:
        fitted = wlsmv.fit(spec.factors, data, spec.higher_order)
    except wlsmv.OrdinalDataError as err:
        result.error = f"not fitted: {err}"
        return result
    result.n_parameters = fitted.n_parameters
    result.df = float(fitted.df)
    result.converged = fitted.converged
    result.problems = list(fitted.problems)
    result.notes += fitted.notes
    result.estimates = fitted.estimates
    table = fitted.estimates
    negative = table[(table["op"] == "~~") & (table["lhs"] == table["rhs"]) & (table["est"] < 0)]
    result.heywood = negative["lhs"].astype(str).tolist() if fitted.converged else []
    if result.estimable:
        result.measures = fitted.measures
        _set_headline(result)
    return result


def _set_headline(result: CFAFit) -> None:
    for column, name in HEADLINE[result.estimator].items():
        attribute = {"p": "p_value", "RMSEA_lo90": "rmsea_lower", "RMSEA_hi90": "rmsea_upper"}.get(
            column, column.lower()
        )
        setattr(result, attribute, float(result.measures.get(name, float("nan"))))


def _fit_ml(spec: ModelSpec, data: pd.DataFrame | None, cov: pd.DataFrame | None, result: CFAFit) -> CFAFit:
    """Normal-theory ML with semopy (objective ``MLW``), fit indices as lavaan computes them."""
    import semopy

    words, n = spec.words, result.n_obs
    syntax, names = model_syntax(spec)
    result.names = {v: k for k, v in names.items()}
    result.names.update({identifier(f, "f_"): f for f in spec.factors})
    result.names.update({identifier(g, "g_"): g for g in spec.higher_order})
    if data is not None:
        frame = data[words].astype(float).rename(columns=names)
        sample = np.cov(frame.to_numpy(), rowvar=False, ddof=0)
    else:
        frame = cov.loc[words, words].rename(index=names, columns=names)
        sample = frame.to_numpy(float)
    if n <= len(words):
        result.error = f"not fitted: N = {n} units for {len(words)} words (the sample covariance is singular)"
        return result
    sign, _ = np.linalg.slogdet(sample)
    if sign <= 0:
        result.error = "not fitted: the sample covariance of these words is singular (collinear words)"
        return result
    model = semopy.Model(syntax)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if data is not None:
                res = model.fit(frame, obj="MLW")
            else:
                res = model.fit(cov=frame, n_samples=n, obj="MLW")
            observed = model.vars["observed"]
            order = [list(frame.columns).index(v) for v in observed]
            sample = sample[np.ix_(order, order)]
            implied = model.calc_sigma()[0]
            raw = model.inspect(std_est=True)  # warns on a zero variance: that case is reported below
        result.converged = bool(getattr(res, "success", True))
    except Exception as err:  # semopy raises many kinds of errors on degenerate models
        result.error = f"estimation failed: {type(err).__name__}: {err}"
        return result
    table = _lavaan_table(raw)
    for column in ("lhs", "rhs"):
        table[column] = table[column].map(lambda v: result.names.get(v, v))
    result.estimates = table
    if not result.converged:
        result.problems.append("not converged: the optimiser did not find a solution")
    p = len(observed)
    result.n_parameters = len(model.param_vals)
    result.df = p * (p + 1) / 2 - result.n_parameters
    result.heywood = _heywood_cases(table)
    if result.heywood:
        result.problems.append("Heywood case (a variance at or below zero): " + ", ".join(result.heywood))
    latent = [*spec.factors, *spec.higher_order]
    if _latent_not_positive_definite(table, latent):
        result.problems.append("the covariance matrix of the latent factors is not positive definite")
    try:
        f_ml = ml_discrepancy(sample, implied)
    except np.linalg.LinAlgError as err:
        result.error = f"implied covariance singular: {err}"
        return result
    if not result.estimable:
        return result
    chi2 = n * f_ml
    null_chi2 = n * (np.sum(np.log(np.diag(sample))) - np.linalg.slogdet(sample)[1])
    null_df = p * (p - 1) / 2
    cfi_value, tli_value = cfi(chi2, result.df, null_chi2, null_df), tli(chi2, result.df, null_chi2, null_df)
    lower, upper = rmsea_interval(chi2, result.df, n)
    result.measures = {
        "npar": float(result.n_parameters),
        "chisq": chi2,
        "df": result.df,
        "pvalue": float(stats.chi2.sf(chi2, result.df)) if result.df > 0 else float("nan"),
        "baseline.chisq": null_chi2,
        "baseline.df": null_df,
        "cfi": cfi_value,
        "tli": tli_value,
        "rmsea": rmsea(chi2, result.df, n),
        "rmsea.ci.lower": lower,
        "rmsea.ci.upper": upper,
        "srmr": srmr(sample, implied),
    }
    _set_headline(result)
    return result


def comparison_table(fits: list[CFAFit]) -> pd.DataFrame:
    """One row per model: estimator, whether estimable, fit indices (withheld when not estimable),
    Hu & Bentler verdict, convergence, Heywood cases, N adequacy, notes."""
    return pd.DataFrame([f.row() for f in fits])


def loadings(fit: CFAFit) -> pd.DataFrame:
    """The fitted loadings: indicator, factor, estimate (first indicator fixed to 1), standardised
    estimate (lavaan's ``std.all``) and standard error, with words and factors under their own names."""
    columns = ["indicator", "factor", "estimate", "std_estimate", "se"]
    if fit.estimates is None:
        return pd.DataFrame(columns=columns)
    est = fit.estimates[fit.estimates["op"] == "=~"]
    table = pd.DataFrame(
        {
            "indicator": est["rhs"].to_numpy(),
            "factor": est["lhs"].to_numpy(),
            "estimate": est["est"].to_numpy(float),
            "std_estimate": est["std_all"].to_numpy(float),
            "se": est["se"].to_numpy(float),
        }
    )
    if not fit.estimable:  # an inadmissible solution's numbers describe no model (and differ from CPU to CPU)
        table[["estimate", "std_estimate", "se"]] = np.nan
    return table
