"""Steps 4-6 of the EFA: extraction (minres, ML) and rotation, psych::fa's fit indices, and the solution
with its tables."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from factor_analyzer import FactorAnalyzer
from factor_analyzer.rotator import Rotator
from scipy import optimize, stats

from ...core.display import Report
from .base import EXTRACTIONS, OBLIQUE, PSI_BOUNDS, ROTATIONS, EFAInputError
from .correlation import CorrelationResult, _as_array, _log, check_sample_size, determinant, smooth_correlation
from .settings import EFASettings


# ------------------------------------------------------------------------------------------
# 4. Extraction (minres / ML) and rotation
# ------------------------------------------------------------------------------------------
def _minres_objective(psi: np.ndarray, corr: np.ndarray, k: int) -> tuple[float, np.ndarray]:
    """factor_analyzer's minres (ULS) objective and its gradient (psych's ``FAgr.minres``)."""
    values, vectors = np.linalg.eigh(corr - np.diag(psi))
    top = vectors[:, ::-1][:, :k] * np.sqrt(np.maximum(values[::-1][:k], 0))
    residual = corr - np.diag(psi) - top @ top.T
    return float(np.sum(residual**2)), -2.0 * np.diag(residual)


def _ml_objective(psi: np.ndarray, corr: np.ndarray, k: int) -> tuple[float, np.ndarray]:
    """factor_analyzer's ML objective and its gradient (psych's ``FAgr``)."""
    scale = 1.0 / np.sqrt(psi)
    values, vectors = np.linalg.eigh(corr * np.outer(scale, scale))
    values, vectors = values[::-1], vectors[:, ::-1]
    rest = values[k:]
    error = -(np.sum(np.log(rest) - rest) - k + corr.shape[0])
    load = np.sqrt(psi)[:, None] * vectors[:, :k] * np.sqrt(np.maximum(values[:k] - 1, 0))
    grad = (np.einsum("ij,ij->i", load, load) + psi - np.diag(corr)) / psi**2
    return float(error), grad


def _smc(corr: np.ndarray) -> np.ndarray:
    """Squared multiple correlations (starting communalities, like psych and factor_analyzer)."""
    try:
        inv = np.linalg.inv(corr)
    except np.linalg.LinAlgError:
        inv = np.linalg.pinv(corr)
    return np.clip(1.0 - 1.0 / np.diag(inv), 0.0, 1.0)


def extract(corr: np.ndarray, n_factors: int, extraction: str = "minres") -> tuple[np.ndarray, np.ndarray, bool]:
    """Unrotated loadings, uniquenesses and convergence of a minres or ML factor extraction.

    factor_analyzer's objective functions and loading normalisation (``FactorAnalyzer._fit_*``,
    ``_normalize_*``) with an analytic gradient: factor_analyzer differentiates numerically, which
    takes p + 1 evaluations per step (2.3 s instead of 0.02 s for 123 words, ``benchmarks/bench_efa.py``),
    and parallel analysis and the bootstrap repeat the extraction hundreds of times.
    """
    if extraction not in EXTRACTIONS:
        raise EFAInputError(f"extraction must be one of {EXTRACTIONS}, not {extraction!r}")
    objective = _minres_objective if extraction == "minres" else _ml_objective
    start = np.clip(np.diag(corr) - _smc(corr), *PSI_BOUNDS)
    res = optimize.minimize(
        objective,
        start,
        args=(corr, n_factors),
        jac=True,
        method="L-BFGS-B",
        bounds=[PSI_BOUNDS] * corr.shape[0],
        options={"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-9},
    )
    if extraction == "minres":
        loadings = FactorAnalyzer._normalize_uls(res.x, corr.copy(), n_factors)
    else:
        loadings = FactorAnalyzer._normalize_ml(res.x, corr.copy(), n_factors)
    return np.asarray(loadings), res.x, bool(res.success)


def omega(corr: np.ndarray, loadings: np.ndarray, phi: np.ndarray, extraction: str) -> pd.DataFrame:
    """McDonald's omega of the whole word set and of each factor's words, as ``psych::omega`` reports them
    (its ``omega.group``: rows ``g`` and ``F1``..``Fk``; columns ``total``, ``general``, ``group``).

    psych's ``schmid`` turns the oblique solution into a general factor ``g`` plus orthogonal group factors:
    ``g``'s loadings on the factors come from a one-factor ``extraction`` of their correlations ``phi`` (with
    two factors both are the square root of their correlation, psych's ``option = "equal"``), a word's ``g``
    loading is its pattern row times them, and its group loadings keep the rest of its squared loading.
    Words with a negative ``g`` loading are reversed (psych's ``flip``). A factor's words are those whose
    largest group loading is on it. ``total`` is the share of their sum's variance that is common, ``general``
    the share from ``g`` (omega hierarchical in row ``g``) and ``group`` the share from the factor itself.
    """
    k = loadings.shape[1]
    if k == 1:
        gload = np.ones(1)
    elif k == 2:
        gload = np.sqrt(abs(phi[0, 1])) * np.array([1.0, np.sign(phi[0, 1])])
    else:
        gload = extract(phi, 1, extraction)[0][:, 0]
        gload = gload * (1 if gload.sum() >= 0 else -1)  # psych::fa signs a factor by its column sum
    general = loadings @ gload
    remaining = np.clip(loadings**2 - (loadings * gload) ** 2, 0, None)
    group = np.sign(loadings) * np.sqrt(remaining)
    unique = np.diag(corr) - np.diag(loadings @ phi @ loadings.T)
    key = np.where(general < 0, -1.0, 1.0)
    r = corr * np.outer(key, key)
    general, group = general * key, group * key[:, None]
    total = float(r.sum())
    owner = np.argmax(np.abs(group), axis=1)
    rows = {"g": [(total - unique.sum()) / total, general.sum() ** 2 / total, np.nan]}
    group_sum = 0.0
    for f in range(k):
        words = owner == f
        if not words.any():
            rows[f"F{f + 1}"] = [np.nan] * 3
            continue
        variance = float(r[np.ix_(words, words)].sum())
        own, shared = group[words, f].sum() ** 2, general[words].sum() ** 2
        group_sum += own
        rows[f"F{f + 1}"] = [(own + shared) / variance, shared / variance, own / variance]
    rows["g"][2] = group_sum / total
    return pd.DataFrame.from_dict(rows, orient="index", columns=["total", "general", "group"])


def rotate(loadings: np.ndarray, rotation: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Rotate with factor_analyzer's ``Rotator``, then sign and order the factors as ``psych::fa`` does.

    Each factor's loadings sum to a positive number; factors are ordered by the variance they
    account for (``diag(Phi L'L)`` for oblique rotations). Returns loadings and Phi (None if orthogonal).
    """
    if rotation not in ROTATIONS:
        raise EFAInputError(f"rotation must be one of {ROTATIONS}, not {rotation!r}")
    k = loadings.shape[1]
    phi = None
    if k > 1 and rotation != "none":
        rotator = Rotator(method=rotation)
        loadings = rotator.fit_transform(loadings)
        phi = rotator.phi_ if rotation in OBLIQUE else None
    signs = np.sign(loadings.sum(axis=0))
    signs[signs == 0] = 1
    loadings = loadings * signs
    if phi is not None:
        phi = phi * np.outer(signs, signs)
    if k > 1:
        explained = np.diag(phi @ loadings.T @ loadings) if phi is not None else (loadings**2).sum(axis=0)
        order = np.argsort(-explained, kind="stable")
        loadings = loadings[:, order]
        if phi is not None:
            phi = phi[np.ix_(order, order)]
    return loadings, phi


# ------------------------------------------------------------------------------------------
# 5. Fit indices (psych::fa's factor.stats)
# ------------------------------------------------------------------------------------------
def _rmsea_interval(chi2: float, dof: float, n_obs: int, level: float) -> tuple[float, float]:
    """psych's RMSEA confidence bounds from the noncentral chi-square (denominator n - 1); a bound on the
    wrong side of the RMSEA itself is reported as NaN, as psych does."""
    tail = (1 - level) / 2

    def bound(target: float) -> float:
        if stats.chi2.cdf(chi2, dof) <= target:
            return 0.0
        upper = max(n_obs, chi2) + 2 * n_obs
        try:
            lam = optimize.brentq(lambda x: stats.ncx2.cdf(chi2, dof, max(x, 1e-12)) - target, 0.0, upper)
        except ValueError:  # no root in psych's search interval: psych's try() gives NA
            return float("nan")
        return math.sqrt(lam / (n_obs - 1) / dof)

    return bound(1 - tail), bound(tail)


def fit_indices(
    corr: np.ndarray, loadings: np.ndarray, phi: np.ndarray | None, n_obs: int, level: float = 0.90
) -> dict[str, float]:
    """EFA fit as ``psych::fa`` reports it (``fa.stats``): ML objective, chi2, dof, RMSEA (with CI), TLI,
    RMSR, BIC, and psych's empirical chi2 from the off-diagonal residuals.

    As in psych, the objective is ``tr(M^-1 R) - log det(M^-1 R) - p`` with both matrices smoothed
    (``cor.smooth``); when that determinant is 0 or infinite in double precision (a smoothed matrix of
    many words), the objective becomes the sum of squared residuals, and the null model's the sum of
    squared correlations (``fit_basis`` says which). Either way, after smoothing these chi-squares are
    not likelihood-ratio tests of the model: read the RMSR and the empirical chi2.
    """
    p, k = loadings.shape
    model = loadings @ (phi if phi is not None else np.eye(k)) @ loadings.T
    residual = corr - model
    rstar2 = float(np.sum(residual**2))  # with the diagonal, as psych's fall-back objective
    r2 = float(np.sum(corr**2))
    off = residual.copy()
    np.fill_diagonal(off, 0.0)
    rstar_off = float(np.sum(off**2))
    dof = p * (p - 1) / 2 - p * k + k * (k - 1) / 2
    implied = model.copy()
    np.fill_diagonal(implied, np.diag(corr))
    implied, _ = smooth_correlation(implied)
    r, _ = smooth_correlation(corr)
    m_inv_r = np.linalg.solve(implied, r)
    objective = float(np.trace(m_inv_r) - _log(determinant(m_inv_r)) - p)
    basis = "likelihood"
    if math.isinf(objective):
        objective, basis = rstar2, "residuals"
    f0 = float(np.trace(r) - _log(determinant(r)) - p)
    null_basis = "likelihood"
    if math.isinf(f0):
        f0, null_basis = r2, "correlations"
    nm = (n_obs - 1) - (2 * p + 5) / 6 - 2 * k / 3
    chi2 = objective * nm
    chi2 = max(chi2, 0.0) if not math.isnan(chi2) else chi2
    out = {
        "objective": objective,
        "chi2": chi2,
        "dof": dof,
        "p_value": float(stats.chi2.sf(chi2, dof)) if dof > 0 else float("nan"),
        "null_chi2": f0 * ((n_obs - 1) - (2 * p + 5) / 6),
        "null_dof": p * (p - 1) / 2,
        "rmsr": float(np.sqrt(rstar_off / (p * (p - 1)))),
        "empirical_chi2": rstar_off * n_obs,
        "empirical_p_value": float(stats.chi2.sf(rstar_off * n_obs, dof)) if dof > 0 else float("nan"),
        "fit_basis": basis,
        "null_basis": null_basis,
    }
    if dof > 0 and np.isfinite(chi2):
        m0, mm = f0 * 2 / (p * (p - 1)), objective / dof
        out["tli"] = float((m0 - mm) / (m0 - 1 / nm))
        value = math.sqrt(max(chi2 / (dof * n_obs) - 1 / (n_obs - 1), 0.0))
        lower, upper = _rmsea_interval(chi2, dof, n_obs, level)
        out["rmsea"] = value
        out["rmsea_lower"] = lower if lower <= value else float("nan")
        out["rmsea_upper"] = upper if upper >= value else float("nan")
        out["bic"] = chi2 - dof * math.log(n_obs)
    else:
        out.update(tli=float("nan"), rmsea=float("nan"), rmsea_lower=float("nan"), rmsea_upper=float("nan"))
        out["bic"] = float("nan")
    return out


# ------------------------------------------------------------------------------------------
# 6. The EFA solution
# ------------------------------------------------------------------------------------------
@dataclass(repr=False)  # a console shows the report, not the dataclass
class EFAResult(Report):
    """An exploratory factor solution, reported as ``psych::fa`` prints it."""

    loadings: pd.DataFrame  # words x F1..Fk (pattern matrix)
    phi: pd.DataFrame  # factor correlations (identity for orthogonal solutions)
    communalities: pd.Series
    uniquenesses: pd.Series
    complexity: pd.Series  # Hoffman's index
    variance: pd.DataFrame  # psych's Vaccounted
    fit: dict[str, float]
    n_obs: int
    extraction: str
    rotation: str
    converged: bool
    cutoff: float  # |loading| at which a word is assigned to its factor (the run's ``efa.cutoff``)
    omega: pd.DataFrame  # McDonald's omega: psych::omega's omega.group (:func:`omega`)
    heywood: list[str] = field(default_factory=list)  # words whose uniqueness hit the lower bound
    notes: list[str] = field(default_factory=list)

    @property
    def n_factors(self) -> int:
        return self.loadings.shape[1]

    @property
    def factors(self) -> list[str]:
        return list(self.loadings.columns)

    def summary(self) -> dict:
        return {
            "n_factors": self.n_factors,
            "extraction": self.extraction,
            "rotation": self.rotation,
            "converged": self.converged,
            "heywood_cases": len(self.heywood),
            **{k: self.fit[k] for k in ("rmsea", "rmsea_lower", "rmsea_upper", "tli", "rmsr", "chi2", "dof")},
            "variance_explained": float(self.variance.loc["Proportion Var"].sum()),
        }

    @property
    def title(self) -> str:  # type: ignore[override]
        return (
            f"EFA: {self.n_factors} factor(s), {self.extraction} extraction, {self.rotation} rotation, N = {self.n_obs}"
        )

    def sections(self) -> list[tuple[str, object]]:
        fit = {
            key: self.fit[key]
            for key in ("rmsr", "chi2", "dof", "p_value", "rmsea", "rmsea_lower", "rmsea_upper", "tli", "bic")
        }
        fit["empirical_chi2"] = self.fit["empirical_chi2"]
        fit["fit_basis"] = self.fit["fit_basis"]
        out: list[tuple[str, object]] = [
            (f"Loadings (pattern matrix; below the cut-off {self.cutoff:g} blank)", loadings_table(self)),
            ("Variance accounted for", self.variance),
        ]
        if self.n_factors > 1:
            out.append(("Factor correlations", self.phi))
        out.append(("Fit (psych::fa)", fit))
        out.append(("McDonald's omega of the words and of each factor's words (psych::omega)", self.omega))
        if self.notes:
            out.append(("Notes", "\n".join(self.notes)))
        return out

    def metrics(self) -> dict:
        return {**self.summary(), "fit_basis": self.fit["fit_basis"]}


def max_factors(n_words: int) -> int:
    """The largest number of factors with positive degrees of freedom for ``n_words`` variables."""
    k = 0
    while (n_words - (k + 1)) ** 2 > n_words + (k + 1):
        k += 1
    return max(k, 1)


def fit_efa(
    corr: CorrelationResult | pd.DataFrame,
    n_factors: int,
    settings: EFASettings | None = None,
    n_obs: int | None = None,
    *,
    extraction: str | None = None,
    rotation: str | None = None,
    cutoff: float | None = None,
) -> EFAResult:
    """Extract and rotate ``n_factors`` factors from a word correlation matrix.

    ``settings`` (the run's ``efa`` settings; the defaults when None) give the extraction, the rotation
    (psych's default rotation is oblimin, factor_analyzer's promax) and the cut-off the result is
    reported with; ``extraction``, ``rotation`` and ``cutoff`` override them (a refit of another solution). More
    factors than the data can identify are reduced (noted).
    """
    settings = settings or EFASettings()
    extraction = extraction or settings.extraction
    rotation = rotation or settings.rotation
    cutoff = settings.cutoff if cutoff is None else cutoff
    notes = []
    smoothed = False
    method = "tetrachoric"  # a matrix given as it is: estimated pair by pair, say
    if isinstance(corr, CorrelationResult):
        n_obs = corr.n_obs if n_obs is None else n_obs
        smoothed = corr.smoothed
        method = "polychoric" if corr.method.endswith("polychoric") else method
        corr = corr.matrix
    if n_obs is None:
        raise EFAInputError("n_obs is needed for the fit indices")
    r = _as_array(corr)
    p = r.shape[0]
    caveat = check_sample_size(n_obs, p, method)  # a matrix given here is used as it is
    if caveat:
        notes.append(caveat)
    k = int(n_factors)
    if k < 1:
        notes.append(f"{k} factors requested: 1 used")
        k = 1
    if k > max_factors(p):
        notes.append(f"{k} factors cannot be identified from {p} words: {max_factors(p)} used")
        k = max_factors(p)
    unrotated, psi, converged = extract(r, k, extraction)
    loadings, phi = rotate(unrotated, rotation)
    names = list(corr.columns) if isinstance(corr, pd.DataFrame) else [f"V{i + 1}" for i in range(p)]
    factors = [f"F{i + 1}" for i in range(k)]
    phi_full = phi if phi is not None else np.eye(k)
    communality = np.diag(loadings @ phi_full @ loadings.T)
    ss = np.diag(phi_full @ loadings.T @ loadings)
    total = float(np.sum(np.diag(r)))
    variance = pd.DataFrame(
        [ss, ss / total, np.cumsum(ss / total), ss / ss.sum(), np.cumsum(ss / ss.sum())],
        index=["SS loadings", "Proportion Var", "Cumulative Var", "Proportion Explained", "Cumulative Proportion"],
        columns=factors,
    )
    complexity = (loadings**2).sum(axis=1) ** 2 / (loadings**4).sum(axis=1)
    heywood = [names[i] for i in np.flatnonzero(psi <= PSI_BOUNDS[0] + 1e-6)]
    if heywood:
        notes.append(f"Heywood case: uniqueness at the lower bound for {', '.join(heywood)}")
    if not converged:
        notes.append("the extraction did not converge")
    fit = fit_indices(r, loadings, phi, n_obs)
    if smoothed or fit["fit_basis"] != "likelihood":
        notes.append(_smoothed_fit_note(fit, smoothed))
    return EFAResult(
        loadings=pd.DataFrame(loadings, index=names, columns=factors),
        phi=pd.DataFrame(phi_full, index=factors, columns=factors),
        communalities=pd.Series(communality, index=names, name="h2"),
        uniquenesses=pd.Series(np.diag(r) - communality, index=names, name="u2"),
        complexity=pd.Series(complexity, index=names, name="complexity"),
        variance=variance,
        fit=fit,
        n_obs=int(n_obs),
        extraction=extraction,
        rotation=rotation,
        converged=converged,
        cutoff=cutoff,
        omega=omega(r, loadings, phi_full, extraction).set_axis(["g", *factors]),
        heywood=heywood,
        notes=notes,
    )


def _smoothed_fit_note(fit: dict, smoothed: bool) -> str:
    """What psych's chi2, RMSEA and TLI mean for a smoothed correlation matrix."""
    if fit["fit_basis"] == "residuals":
        basis = (
            "the determinant of the smoothed matrices is 0 in double precision, so (as psych::fa) chi2, RMSEA and "
            "TLI rest on the sum of squared residuals, a rough stand-in for a likelihood ratio"
        )
    else:
        basis = "chi2, RMSEA and TLI rest on a log-determinant dominated by the eigenvalues the smoothing set"
    start = "the correlation matrix was smoothed: " if smoothed else ""
    return f"{start}{basis}; they are not tests of the model. Read the RMSR (root mean square residual)."


def word_factors(result: EFAResult, cutoff: float | None = None) -> pd.DataFrame:
    """One row per word: its primary factor (largest absolute loading), that loading, and whether
    it reaches the cut-off (``assigned``; the result's own cut-off unless given), plus communality,
    complexity and the second-largest loading. Sorted like ``psych::fa.sort``: by factor, then by
    absolute loading."""
    cutoff = result.cutoff if cutoff is None else cutoff
    load = result.loadings
    primary = load.abs().idxmax(axis=1)
    value = np.array([load.at[w, f] for w, f in primary.items()])
    second = load.abs().apply(lambda row: np.sort(row.to_numpy())[-2] if len(row) > 1 else 0.0, axis=1)
    out = pd.DataFrame(
        {
            "word": load.index,
            "factor": primary.to_numpy(),
            "loading": value,
            "assigned": np.abs(value) >= cutoff,
            "second_loading": second.to_numpy(),
            "communality": result.communalities.to_numpy(),
            "complexity": result.complexity.to_numpy(),
        }
    )
    order = out["factor"].map({f: i for i, f in enumerate(result.factors)})
    out = out.assign(_order=order, _abs=out["loading"].abs()).sort_values(["_order", "_abs"], ascending=[True, False])
    return out.drop(columns=["_order", "_abs"]).reset_index(drop=True)


def loadings_table(result: EFAResult, cutoff: float | None = None) -> pd.DataFrame:
    """The sorted pattern matrix with h2, u2 and complexity; loadings below the cut-off (the result's own
    unless given) are blanked (NaN)."""
    cutoff = result.cutoff if cutoff is None else cutoff
    order = word_factors(result, cutoff)["word"]
    table = result.loadings.loc[order].copy()
    table = table.where(table.abs() >= cutoff)
    table["h2"] = result.communalities.loc[order]
    table["u2"] = result.uniquenesses.loc[order]
    table["complexity"] = result.complexity.loc[order]
    return table.rename_axis("word").reset_index()


def top_words(result: EFAResult, n: int = 10) -> pd.DataFrame:
    """The ``n`` words with the highest positive loadings on each factor (to name the factors)."""
    cols = {}
    for f in result.factors:
        best = result.loadings[f].sort_values(ascending=False).head(n)
        cols[f] = [f"{w} ({v:.2f})" for w, v in best.items()] + [""] * (n - len(best))
    return pd.DataFrame(cols, index=pd.RangeIndex(1, n + 1, name="rank"))


# do factors track the model that answered? ---------------------------------------------
def factor_model_association(
    incidence: pd.DataFrame, word_factors: pd.DataFrame, respondents: pd.DataFrame, by: str = "model"
) -> pd.DataFrame:
    """How much each factor reflects who answered rather than which values go together.

    For each factor, a unit's score is the share of the factor's assigned words it used; the
    table gives the mean score per group (``by``: model, family or training_stage column of
    ``respondents``) and eta squared, the share of the scores' variance between groups. With
    few models, a factor with a high eta squared is mostly one model's vocabulary.
    Units must be respondents (the index of ``incidence``).
    """
    groups = respondents.set_index("respondent").loc[incidence.index, by]
    rows = []
    for factor, g in word_factors[word_factors["assigned"]].groupby("factor"):
        words = [w for w in g["word"] if w in incidence.columns]
        score = (incidence[words] > 0).mean(axis=1)
        total = float(((score - score.mean()) ** 2).sum())
        by_group = score.groupby(groups.to_numpy())
        means = by_group.mean()
        between = float((by_group.size() * (means - score.mean()) ** 2).sum())
        rows.append(
            {"factor": factor, "words": len(words), "eta_squared": round(between / total, 3) if total else float("nan")}
            | means.round(3).to_dict()
        )
    return pd.DataFrame(rows)
