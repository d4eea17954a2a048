"""How sure is the factor count? Its distribution over parallel-analysis seeds, subsamples and word caps.

Parallel analysis (:func:`valuelex.psychometrics.efa.parallel_analysis`) gives one number, but that number rests on
three things a reader cannot see in it: the random null data sets (its seed), the units that happened
to answer, and which words it counts on (the ``parallel_max_words`` most used; words tied at that cap
are all counted or none, ``parallel_ties``). :func:`count_stability` repeats the count

- with ``count_resamples`` seeds of the null data on the same units (the run's seed first);
- on ``count_resamples`` subsamples of the units: ``count_subsample`` of them (80%), drawn without
  replacement (for the within-model count: that share of each model's respondents), the words counted
  chosen again on each subsample by the same rule;
- with other caps (units/4, units/2, every word) and the other tie rule, with the run's seed;

and reports the count as ``4 (4 in 71% of subsamples, 5 in 24%)``.

Why subsamples and not bootstrap resamples (our choice, by simulation): on planted 3-factor panels whose
count is 3 on every full panel, bootstrap resamples (drawn with replacement, the null data repeating units
as the resample does) gave 3 in 35%, 30% and 50% of resamples at 120, 250 and 525 respondents, with counts
from 2 to 7: the duplicated units distort the count whatever the null does. Subsamples of 80% gave 3 in
60%, 70% and 100% (``docs/factor_count.md``, ``benchmarks/study_count_resampling.py``). A subsample has
fewer units than the sample, so at small samples its count can fall below the full sample's: the spread
is an upper bound on the instability.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from ..core.display import Report
from . import efa
from .efa import within
from .efa.settings import EFASettings


def derived_seed(seed: int, *key: int) -> int:
    """A seed of its own for every repetition (``numpy.random.SeedSequence`` of the seed and the key)."""
    return int(np.random.SeedSequence([seed, *key]).generate_state(1)[0])


def shares(counts: pd.Series | list[int] | np.ndarray) -> pd.Series:
    """Share of the runs giving each count, most frequent first (ties: the smaller count first)."""
    values = pd.Series(np.asarray(counts, dtype=int))
    table = values.value_counts(normalize=True)
    return table.sort_index().sort_values(ascending=False, kind="stable").rename("share").rename_axis("factors")


def describe_counts(count: int | None, counts: pd.Series | list[int] | np.ndarray, what: str = "resamples") -> str:
    """``"4 (4 in 71% of resamples, 5 in 24%)"``: a count with the distribution behind it (``count`` None:
    the most frequent count leads). Every count seen is listed, most frequent first."""
    table = shares(counts)
    if len(table) == 0:
        return "no count" if count is None else f"{count} (no {what})"
    lead = int(table.index[0]) if count is None else int(count)
    parts = [f"{int(k)} in {v:.0%}" for k, v in table.items()]
    parts[0] += f" of {what}"
    return f"{lead} ({', '.join(parts)})"


@dataclass(repr=False)  # IPython would prefer a dataclass __repr__ to Report's display
class CountStability(Report):
    """The factor count of one analysis and its distribution over seeds, subsamples and word caps."""

    level: str  # "pooled" or "within models"
    count: int  # parallel analysis with the run's seed on all units
    words_counted: int
    tie_rule: str
    tied: list[str]  # words tied at the cap (all counted or none, by the tie rule)
    seeds: pd.Series  # count per seed of the null data (the run's seed first)
    subsamples: pd.Series  # count per subsample of the units (count_subsample of them, without replacement)
    caps: pd.DataFrame  # rule, words_counted, factors (the run's seed)
    failures: int = 0  # subsamples that could not be analysed (too few varying words)
    subsample: float = 0.8  # the share of units in each subsample (``efa.count_subsample``)
    notes: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:  # type: ignore[override]
        return f"How sure is the {self.level} factor count? Parallel analysis repeated"

    def describe(self) -> str:
        """``"4 (4 in 71% of subsamples, 5 in 24%)"``."""
        return describe_counts(self.count, self.subsamples, "subsamples")

    def describe_seeds(self) -> str:
        return describe_counts(self.count, self.seeds, "seeds")

    def distribution(self) -> pd.DataFrame:
        """Per count: its share over seeds and over subsamples ."""
        table = pd.concat([shares(self.seeds).rename("seeds"), shares(self.subsamples).rename("subsamples")], axis=1)
        return table.fillna(0.0).sort_index().rename_axis("factors").reset_index()

    def summary(self) -> dict:
        return {
            "count": self.count,
            "over subsamples": self.describe(),
            "over seeds": self.describe_seeds(),
            "words counted": self.words_counted,
            "tie rule at the cap": self.tie_rule,
            "tied at the cap": ", ".join(self.tied) if self.tied else "none",
            "subsamples": f"{len(self.subsamples)} of {self.subsample:.0%} of the units, without replacement "
            f"({self.failures} could not be analysed)",
        }

    def sections(self) -> list[tuple[str, object]]:
        out: list[tuple[str, object]] = [
            ("", self.summary()),
            ("Share of runs giving each count", self.distribution()),
            ("Other word caps and tie rules (the run's seed)", self.caps),
        ]
        if self.notes:
            out.append(("Notes", "\n".join(self.notes)))
        return out

    def metrics(self) -> dict:
        key = "within_" if self.level.startswith("within") else ""
        return {
            f"{key}factor_count": self.describe(),
            f"{key}factor_count_seeds": self.describe_seeds(),
            f"{key}factor_count_modal_share": round(float(shares(self.subsamples).iloc[0]), 3)
            if len(self.subsamples)
            else None,
            f"{key}factor_count_mode": int(shares(self.subsamples).index[0]) if len(self.subsamples) else None,
            f"{key}factor_count_by_cap": dict(zip(self.caps["rule"], self.caps["factors"].astype(int), strict=True)),
            f"{key}words_tied_at_cap": len(self.tied),
        }


def _cap_rules(n_units: int, settings: EFASettings) -> list[tuple[str, int | str | None, str]]:
    """(label, parallel_max_words, ties) of the caps compared with the run's."""
    other = "exclude" if settings.parallel_ties == "include" else "include"
    rules = [
        (f"units // 4 ({n_units // 4}), ties {settings.parallel_ties}d", n_units // 4, settings.parallel_ties),
        (
            f"the run's: {settings.parallel_max_words}, ties {settings.parallel_ties}d",
            settings.parallel_max_words,
            settings.parallel_ties,
        ),  # fmt: skip
        (f"the run's: {settings.parallel_max_words}, ties {other}d", settings.parallel_max_words, other),
        (f"units // 2 ({n_units // 2}), ties {settings.parallel_ties}d", n_units // 2, settings.parallel_ties),
        ("every word", None, settings.parallel_ties),
    ]
    return rules


def count_stability(
    data: pd.DataFrame,
    settings: EFASettings,
    groups: pd.Series | np.ndarray | None = None,
) -> CountStability:
    """The factor count of notebook 03 (``groups`` None: pooled; else within the groups, as
    :func:`valuelex.psychometrics.efa.within.within_parallel_analysis`) repeated over ``settings.count_resamples`` seeds,
    as many subsamples of ``settings.count_subsample`` of the units (within each group when ``groups`` are
    given), and other word caps (see the module docstring).

    ``data`` are the words that entered the analysis (after the word filter; for the within count, the
    words that vary inside a group). Each subsample chooses the words it counts on again, by the run's
    rule, among those that vary in it.
    """
    n = len(data)
    if groups is None:
        codes = None
        level = "pooled"
    else:
        codes, _ = within._codes(groups, n)
        level = "within models"

    def count(frame: pd.DataFrame, seed: int, max_words, ties: str, rows: np.ndarray | None = None) -> int:
        """The count on ``frame`` (all units), or on its rows ``rows`` (a subsample, each unit once)."""
        picked = np.arange(len(frame)) if rows is None else rows
        sample = frame.iloc[picked]
        if codes is None:
            varying = sample.std(axis=0).to_numpy() > 0
        else:
            varying = ~within._constant_within(sample.to_numpy(float), codes[picked])
        words = efa.parallel_words(sample.loc[:, varying], max_words, ties)
        units = sample[words]
        if codes is None:
            result = efa.parallel_count(units, settings, seed)
        else:
            result = within.within_parallel_analysis(
                units,
                codes[picked],
                settings.within_correlation,
                settings.extraction,
                settings.parallel_iter,
                settings.parallel_quantile,
                seed,
            )
        return result.n_factors

    repeats = settings.count_resamples
    with threadpool_limits(limits=1):
        words = efa.parallel_words(data, settings.parallel_max_words, settings.parallel_ties)
        seeds = [settings.seed] + [derived_seed(settings.seed, 1, i) for i in range(1, repeats)]
        by_seed = pd.Series(
            [count(data, s, settings.parallel_max_words, settings.parallel_ties) for s in seeds],
            index=pd.Index(seeds, name="seed"),
            name="factors",
        )
        rng = np.random.default_rng(derived_seed(settings.seed, 2))
        blocks = [np.arange(n)] if codes is None else [np.flatnonzero(codes == g) for g in range(codes.max() + 1)]
        by_subsample, failures = [], 0
        for i in range(repeats):
            # each model keeps count_subsample of its respondents, at least one (a model may have one)
            drawn = [
                rng.choice(block, max(1, round(settings.count_subsample * len(block))), replace=False)
                for block in blocks
            ]
            rows = np.sort(np.concatenate(drawn))
            try:
                by_subsample.append(
                    count(
                        data,
                        derived_seed(settings.seed, 3, i),
                        settings.parallel_max_words,
                        settings.parallel_ties,
                        rows,
                    )
                )
            except efa.EFAInputError:
                failures += 1
        caps = []
        for label, max_words, ties in _cap_rules(n, settings):
            counted = efa.parallel_words(data, max_words, ties)
            factors = (
                by_seed.iloc[0] if (max_words, ties) == (settings.parallel_max_words, settings.parallel_ties) else None
            )
            if factors is None:
                factors = count(data, settings.seed, max_words, ties)
            caps.append({"rule": label, "words_counted": len(counted), "factors": int(factors)})
    tied = efa.tied_at_cap(data, settings.parallel_max_words)
    notes = []
    if tied:
        notes.append(
            f"{len(tied)} words are tied at the cap ({', '.join(tied)}): by the tie rule "
            f"({settings.parallel_ties}) they are {'all counted' if settings.parallel_ties == 'include' else 'all left out'}"
        )
    return CountStability(
        level=level,
        count=int(by_seed.iloc[0]),
        words_counted=len(words),
        tie_rule=settings.parallel_ties,
        tied=tied,
        seeds=by_seed,
        subsamples=pd.Series(by_subsample, name="factors", dtype=int),
        caps=pd.DataFrame(caps),
        failures=failures,
        subsample=settings.count_subsample,
        notes=notes,
    )
