"""One figure style, and saving with stable names: PNG + PDF for figures, CSV + Markdown for tables.

Files are written without timestamps or version stamps so that two runs give the same bytes.
Every stage module draws its figures with one function per figure and saves them here.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from . import paths

PALETTE = {
    # The paper's three dimensions and six sub-dimensions (Figure 1), one colour family each.
    "Competence": "#3b6fb6",
    "Self-Competent": "#3b6fb6",
    "User-Oriented": "#7fa7dc",
    "Character": "#d9822b",
    "Social": "#d9822b",
    "Idealistic": "#f2b872",
    "Integrity": "#3f9b62",
    "Professional": "#3f9b62",
    "Ethical": "#8fcf9f",
}
STAGE_COLOURS = {"pretrained": "#9e9e9e", "instruct": "#3b6fb6", "aligned": "#c44e52"}


def apply_style() -> None:
    """The project's single figure style."""
    sns.set_theme(context="notebook", style="whitegrid", palette="deep", font_scale=0.95)
    plt.rcParams.update(
        {
            "figure.dpi": 110,
            "savefig.dpi": 150,
            "savefig.bbox": "tight",
            "axes.titleweight": "bold",
            "axes.titlesize": 12,
            "figure.figsize": (7.0, 4.5),
            "svg.hashsalt": "valuelex",
            "pdf.fonttype": 42,
        }
    )


def save_figure(fig: plt.Figure, name: str, folder: Path | None = None) -> list[Path]:
    """Save ``name.png`` and ``name.pdf`` (deterministic bytes) and return their paths."""
    folder = Path(folder or paths.FIGURES)
    folder.mkdir(parents=True, exist_ok=True)
    png, pdf = folder / f"{name}.png", folder / f"{name}.pdf"
    fig.savefig(png, metadata={"Software": None})
    fig.savefig(pdf, metadata={"Creator": None, "Producer": None, "CreationDate": None})
    return [png, pdf]


def save_table(
    df: pd.DataFrame, name: str, folder: Path | None = None, index: bool = False, floatfmt: str = ".3f"
) -> list[Path]:
    """Save ``name.csv`` and ``name.md`` and return their paths."""
    folder = Path(folder or paths.FIGURES)
    folder.mkdir(parents=True, exist_ok=True)
    csv, md = folder / f"{name}.csv", folder / f"{name}.md"
    df.to_csv(csv, index=index, float_format="%.6g", lineterminator="\n")
    # object dtype keeps whole numbers as integers in the Markdown (tabulate would print 2 as 2.000)
    md.write_text(df.astype(object).to_markdown(index=index, floatfmt=floatfmt) + "\n", encoding="utf-8")
    return [csv, md]
