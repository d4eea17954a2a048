"""lavaan's fit indices of a factor model, written once: CFI and TLI against the independence model, RMSEA
with its confidence interval, SRMR. ``lav_fit_cfi``, ``lav_fit_tli``, ``lav_fit_rmsea``, ``lav_fit_rmsea_ci``
and ``lav_fit_srmr`` are the specification (lavaan's ``R/lav_fit_*.R``). With a scaling factor ``c`` (and
``c_null`` for the independence model) the first three are lavaan's robust versions. The ML CFA
(:mod:`valuelex.psychometrics.cfa`) and the WLSMV CFA (:mod:`valuelex.psychometrics.cfa.wlsmv`) both report
these.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize, stats


def cfi(x2: float, df: float, x2_null: float, df_null: float, c: float = 1.0, c_null: float = 1.0) -> float:
    """lavaan's ``lav_fit_cfi``; with ``c``/``c_null`` (scaling factors) the robust version."""
    robust = df > 0 and c != 1 and c_null != 1
    t1 = max(x2 - (c * df if robust else df), 0.0)
    t2 = max(x2 - (c * df if robust else df), x2_null - (c_null * df_null if robust else df_null), 0.0)
    return 1.0 if math.isclose(t1, 0, abs_tol=1.5e-8) and math.isclose(t2, 0, abs_tol=1.5e-8) else 1.0 - t1 / t2


def tli(x2: float, df: float, x2_null: float, df_null: float, c: float = 1.0, c_null: float = 1.0) -> float:
    """lavaan's ``lav_fit_tli`` (no max(0, .): it can exceed 1)."""
    robust = df > 0 and c != 1 and c_null != 1
    t1 = (x2 - (c * df if robust else df)) * df_null
    t2 = (x2_null - (c_null * df_null if robust else df_null)) * df
    return 1.0 - t1 / t2 if df > 0 and abs(t2) > 0 else 1.0


def rmsea(x2: float, df: float, n: float, c: float = 1.0) -> float:
    """lavaan's ``lav_fit_rmsea``: sqrt(max(X2 / N / df - c / N, 0))."""
    return math.sqrt(max(x2 / n / df - c / n, 0.0)) if df > 0 else 0.0


def rmsea_interval(x2: float, df: float, n: float, c: float = 1.0, level: float = 0.90) -> tuple[float, float]:
    """lavaan's ``lav_fit_rmsea_ci``: noncentrality bounds of the observed X2, times c / (N df)."""
    if not (np.isfinite(x2) and np.isfinite(df) and df >= 1):
        return 0.0, 0.0
    upper_p, lower_p = 1 - (1 - level) / 2, (1 - level) / 2

    def cdf(nc: float) -> float:
        return float(stats.chi2.cdf(x2, df)) if nc <= 0 else float(stats.ncx2.cdf(x2, df, nc))

    lower = 0.0
    if cdf(0.0) - upper_p >= 0:
        lam = optimize.brentq(lambda nc: cdf(nc) - upper_p, 0.0, x2)
        lower = math.sqrt(c * lam / (n * df))
    upper = 0.0
    top = max(n, x2 * 4)
    if not (cdf(top) - lower_p > 0 or cdf(0.0) - lower_p < 0):
        lam = optimize.brentq(lambda nc: cdf(nc) - lower_p, 0.0, top)
        upper = math.sqrt(c * lam / (n * df))
    return lower, upper


def srmr(sample_cov: np.ndarray, implied_cov: np.ndarray) -> float:
    """lavaan's ``srmr`` (Bentler's, without mean structure): residual covariances divided by the
    observed standard deviations, root mean square over the lower triangle including the diagonal."""
    sd = np.sqrt(np.diag(sample_cov))
    residual = (sample_cov - implied_cov) / np.outer(sd, sd)
    rows, cols = np.tril_indices(sample_cov.shape[0])
    return float(np.sqrt(np.mean(residual[rows, cols] ** 2)))
