"""Study: which resampling says how stable a parallel-analysis factor count is? (``efa.count_subsample``)

    .venv/bin/python benchmarks/study_count_resampling.py [--sizes 120 250 525] [--panels 2] [--repeats 10]

Plants the three-factor structure of notebook 07 (``simulation.planted_structure``, 120 words) and draws
``--panels`` panels of each size. For every panel it counts factors with the run's EFA settings (parallel
analysis on the words notebook 03 counts on) on all units, then on ``--repeats`` resamples of three kinds:

- ``bootstrap``: units drawn with replacement, the null data repeating units as the resample does (what
  ``factor_count.count_stability`` did before; ``efa.parallel_analysis(repeat=...)``);
- ``subsample 0.8`` and ``subsample 0.5``: that share of the units, drawn without replacement.

A resampling that describes the count's sampling spread should give the planted 3 about as often as the
full panels do. It prints one row per (size, resampling): the share of resamples giving 3 and the counts
seen. Not a benchmark of speed (it is here with the other scripts run on demand); about 15 minutes on
2 cores.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from valuelex.methods import simulation
from valuelex.psychometrics import efa
from valuelex.psychometrics.efa.settings import EFASettings
from valuelex.psychometrics.factor_count import describe_counts


def count(data: pd.DataFrame, settings: EFASettings, seed: int, repeat: np.ndarray | None = None) -> int:
    """Parallel analysis on ``data`` (or its rows ``repeat``, a bootstrap resample) as notebook 03 counts."""
    rows = data if repeat is None else data.iloc[repeat]
    varying = rows.loc[:, rows.std() > 0]
    words = efa.parallel_words(varying, settings.parallel_max_words, settings.parallel_ties)
    return efa.parallel_count(data[words], settings, seed, repeat).n_factors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[120, 250, 525])
    parser.add_argument("--panels", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--words", type=int, default=120)
    args = parser.parse_args()
    settings = EFASettings()
    structure = simulation.planted_structure(n_words=args.words, seed=1)
    rows = []
    for size in args.sizes:
        counts: dict[str, list[int]] = {"full panel": [], "bootstrap": [], "subsample 0.8": [], "subsample 0.5": []}
        for panel in range(args.panels):
            raw = simulation.simulate_incidence(structure, size, seed=100 + panel)
            data = efa.prepare_matrix(raw, settings.coding, settings.min_frequency, settings.min_units).data
            counts["full panel"].append(count(data, settings, settings.seed))
            rng = np.random.default_rng(panel)
            for i in range(args.repeats):
                distinct, repeat = np.unique(rng.integers(0, len(data), len(data)), return_inverse=True)
                counts["bootstrap"].append(count(data.iloc[distinct], settings, i, repeat))
                for share in (0.8, 0.5):
                    picked = np.sort(rng.choice(len(data), round(share * len(data)), replace=False))
                    counts[f"subsample {share}"].append(count(data.iloc[picked], settings, i))
        for kind, found in counts.items():
            what = "panels" if kind == "full panel" else "resamples"
            rows.append(
                {
                    "respondents": size,
                    "resampling": kind,
                    "share giving 3": round(float(np.mean(np.array(found) == 3)), 2),
                    "counts": describe_counts(None, found, what),
                }
            )
            print(rows[-1], flush=True)
    print(pd.DataFrame(rows).to_markdown(index=False))


if __name__ == "__main__":
    main()
