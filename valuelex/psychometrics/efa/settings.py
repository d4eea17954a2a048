"""The EFA's settings (run-file section ``efa``): defined once, here, next to the estimator that consumes them.

``valuelex.settings`` composes them into a run's settings (``RunSettings.efa``); the run-file format is
unchanged (``efa.rotation`` stays ``efa.rotation``). Each field's valid values are part of its type
(:mod:`valuelex.core.schema`); the defaults are our choices unless a comment says ``[paper]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from ...core.schema import Boot, Count, Quantile, Range, Seed, Words


@dataclass(frozen=True)
class EFASettings:
    """Notebook 03: exploratory factor analysis of word co-occurrence (also read by 04 and 07)."""

    unit: Literal["respondent", "response"] = "respondent"  # rows: a respondent's 15 answers pooled, or one answer
    coding: Literal["binary", "counts"] = "binary"  # word used or not
    correlation: Literal["tetrachoric", "pearson"] = "tetrachoric"  # the words are 0/1 cuts of a propensity
    n_factors: Count | Literal["parallel"] = "parallel"  # parallel analysis decides, or a number
    extraction: Literal["minres", "ml"] = "minres"
    rotation: Literal["oblimin", "promax", "varimax", "none"] = "oblimin"  # the dimensions may correlate
    cutoff: Annotated[float, Range(0, 1, low_open=True)] = (
        0.30  # a word is assigned to its factor when |loading| reaches this
    )
    min_frequency: Annotated[float, Range(0, 1, high_open=True)] = (
        0.05  # a word must occur in at least this share of units ...
    )
    min_units: Count = 5  # ... and in at least this many units
    max_words: Words = None  # None: every word above the floor; "auto": units // 2
    parallel_max_words: Words = "auto"  # words parallel analysis counts on: units // 3
    parallel_ties: Literal["include", "exclude"] = "include"  # words tied at that cap: all counted or none
    parallel_iter: Count = 20  # null data sets in the parallel analysis
    parallel_quantile: Quantile = 0.95  # the null eigenvalue quantile an observed eigenvalue must beat
    parallel_null: Literal["permute", "normal"] = "permute"  # shuffle each word's column, or psych's normal data
    parallel_eigenvalues: Literal["fa", "pc"] = "fa"  # reduced-matrix eigenvalues (psych) or components (Horn)
    n_boot: Boot = 100  # bootstrap samples of units for the stability check (the finer run: 500)
    within_correlation: Literal["tetrachoric", "rwg", "tetrachoric_pooled"] = "tetrachoric"  # model thresholds
    n_boot_within: Boot = 50  # bootstrap samples (respondents redrawn inside each model), within-model factors
    count_resamples: Boot = 50  # seeds and subsamples behind the factor count's distribution
    # the share of units in each of those subsamples, drawn without replacement (within models: of each
    # model's respondents). Our choice by simulation: bootstrap resamples misstate the count (factor_count.py)
    count_subsample: Annotated[float, Range(0.2, 1, high_open=True, note="a share: 0.8, not 80")] = 0.8
    seed: Seed = 20240419

    def invalid(self) -> list[tuple[tuple[str, ...], str]]:
        out = []
        for words in ("max_words", "parallel_max_words"):
            value = getattr(self, words)
            if isinstance(self.n_factors, int) and isinstance(value, int) and value <= self.n_factors:
                out.append(
                    ((words, "n_factors"), f"efa.{words} ({value}) must exceed efa.n_factors ({self.n_factors})")
                )
        return out
