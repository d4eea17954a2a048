"""The CFA's figure (notebook 04): the fit of each model against the Hu & Bentler cut-offs, drawn from
:func:`valuelex.psychometrics.cfa.comparison_table`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..psychometrics.cfa import HU_BENTLER


def plot_fit_comparison(table: pd.DataFrame):
    """CFI, TLI, RMSEA (with 90% CI) and SRMR of each model, with the Hu & Bentler cut-offs; a model
    that was not fitted or is not estimable is listed with the reason instead of points."""
    import matplotlib.pyplot as plt

    from ..core.io import apply_style

    apply_style()
    rows = table.reset_index(drop=True)
    fig, axes = plt.subplots(1, 4, figsize=(12.0, 0.45 * max(len(rows), 1) + 2.4), sharey=True, layout="constrained")
    y = np.arange(len(rows))[::-1]
    shown = rows["chi2"].astype(float).notna().to_numpy()
    panels = [
        (name.upper() if name != "srmr" else "SRMR", HU_BENTLER[name]) for name in ("cfi", "tli", "rmsea", "srmr")
    ]
    for ax, (col, (op, cut)) in zip(axes, panels, strict=True):
        values = rows[col].astype(float).to_numpy()
        good = values >= cut if op == ">=" else values <= cut
        ax.scatter(values[shown], y[shown], c=np.where(good, "#3f9b62", "#c44e52")[shown], zorder=3)
        if col == "RMSEA":
            lo, hi = rows["RMSEA_lo90"].astype(float), rows["RMSEA_hi90"].astype(float)
            ax.hlines(y[shown], lo[shown], hi[shown], color="#777777")
        ax.axvline(cut, color="#555555", ls="--", lw=0.8)
        ax.set_title(f"{col} ({op} {cut})")
        ax.margins(x=0.12)  # points at the extremes stay clear of the frame
    for yi, note in zip(y[~shown], rows.loc[~shown, "notes"], strict=True):
        label = "not fitted" if str(note).startswith("not fitted") else "not estimable"
        axes[1].text(0.5, yi, label, transform=axes[1].get_yaxis_transform(), ha="center", va="center", color="#777777")
    axes[0].set_yticks(y, rows["model"])
    handles = [
        plt.Line2D([], [], marker="o", ls="", color="#3f9b62", label="meets the cut-off"),
        plt.Line2D([], [], marker="o", ls="", color="#c44e52", label="misses it"),
        plt.Line2D([], [], color="#555555", ls="--", lw=0.8, label="Hu & Bentler (1999) cut-off"),
        plt.Line2D([], [], color="#777777", label="RMSEA 90% CI"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.suptitle("CFA fit of the taxonomy, our EFA model and one-factor baselines", fontweight="bold")
    return fig
