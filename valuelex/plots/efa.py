"""The EFA's figures (notebooks 03 and 07): one function per figure, drawn from the results of
:mod:`valuelex.psychometrics.efa`."""

from __future__ import annotations

import numpy as np

from ..psychometrics.efa import BootstrapResult, EFAResult, ParallelResult, word_factors


def plot_scree(parallel: ParallelResult, max_factors_shown: int = 15):
    """Scree plot of the observed factor eigenvalues against the null (mean and quantile)."""
    import matplotlib.pyplot as plt

    from ..core.io import apply_style

    apply_style()
    m = min(max_factors_shown, len(parallel.observed))
    x = np.arange(1, m + 1)
    fig, ax = plt.subplots(figsize=(7.0, 4.2))
    ax.plot(x, parallel.observed[:m], "o-", color="#3b6fb6", label="observed data")
    ax.plot(x, parallel.simulated_mean[:m], "--", color="#c44e52", label=f"null data ({parallel.null}), mean")
    q = round(parallel.quantile * 100)
    ax.plot(x, parallel.simulated_quantile[:m], ":", color="#c44e52", label=f"null data, {q}th percentile")
    if parallel.n_factors > 0:
        ax.axvline(parallel.n_factors + 0.5, color="#555555", lw=0.8)
    ax.set_xlabel("factor")
    ax.set_ylabel("eigenvalue of the reduced correlation matrix")
    ax.set_title(f"Parallel analysis: {parallel.n_factors} factor(s) retained")
    ax.set_xticks(x)
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


def plot_loadings_heatmap(result: EFAResult, cutoff: float | None = None, max_words: int = 60):
    """Heatmap of the sorted pattern matrix (the ``max_words`` words with the largest loadings)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    from ..core.io import apply_style

    apply_style()
    table = word_factors(result, cutoff)
    if len(table) > max_words:
        keep = table.assign(a=table["loading"].abs()).nlargest(max_words, "a")["word"]
        table = table[table["word"].isin(set(keep))]
    load = result.loadings.loc[table["word"]]
    height = max(3.0, 0.2 * len(load) + 1.2)
    fig, ax = plt.subplots(figsize=(2.0 + 0.9 * result.n_factors, height))
    sns.heatmap(
        load,
        cmap="RdBu_r",
        vmin=-1,
        vmax=1,
        center=0,
        annot=len(load) <= 40,
        fmt=".2f",
        annot_kws={"size": 7},
        cbar_kws={"label": "loading", "shrink": 0.6},
        ax=ax,
    )
    ax.set_ylabel("")
    ax.set_title(f"EFA loadings ({result.extraction}, {result.rotation})")
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    return fig


def plot_bootstrap_congruence(boot: BootstrapResult):
    """Distribution of each factor's Tucker congruence with the full-sample solution over bootstrap samples."""
    import matplotlib.pyplot as plt

    from ..core.io import apply_style

    apply_style()
    fig, ax = plt.subplots(figsize=(1.5 + 1.2 * len(boot.factors), 4.0))
    data = [boot.congruence[f].dropna().to_numpy() for f in boot.factors]
    ax.boxplot(data, showfliers=True, widths=0.5)
    ax.set_xticks(range(1, len(boot.factors) + 1), boot.factors)
    for level, label in ((0.95, "0.95: equal"), (0.85, "0.85: fair")):
        ax.axhline(level, color="#888888", lw=0.8, ls="--")
        ax.text(len(boot.factors) + 0.45, level, label, va="center", fontsize=8, color="#555555")
    ax.set_ylim(max(0.0, min(0.8, np.nanmin(boot.congruence.to_numpy()) - 0.05)), 1.005)
    ax.set_ylabel("Tucker congruence with the full sample")
    ax.set_title(f"Bootstrap stability ({boot.congruence.shape[0]} samples)")
    fig.tight_layout()
    return fig
