"""One figure style, and saving with stable names: PNG + PDF for figures, CSV + Markdown for tables.

Every save is given its folder (a run's ``folders.figures`` or ``folders.processed``): nothing
here knows where a run writes.

Files are written without timestamps or version stamps so that two runs give the same bytes.
Every stage module draws its figures with one function per figure and saves them here.
Every table (``figures/*.csv`` and the CSVs under ``data/processed/``) goes through
:func:`write_csv`, which writes each float column at its quantity's precision
(:mod:`valuelex.core.precision`), so last-bit floating-point noise does not change the files.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from .precision import format_table

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


class Saved(list):
    """The files a save wrote (a list of paths); shown by name, so that a notebook cell that ends with a
    save shows what it wrote, not this machine's absolute paths."""

    def __repr__(self) -> str:
        return "saved " + ", ".join(Path(p).name for p in self)

    def _repr_pretty_(self, printer, cycle: bool) -> None:
        printer.text(repr(self))


def save_figure(fig: plt.Figure, name: str, folder: Path) -> Saved:
    """Save ``name.png`` and ``name.pdf`` (deterministic bytes) and return their paths.

    No software version, creation date or producer is written, so the bytes depend only on what
    is drawn (and on matplotlib's and FreeType's versions, which the lock pins).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    png, pdf = folder / f"{name}.png", folder / f"{name}.pdf"
    fig.savefig(png, metadata={"Software": None})
    fig.savefig(pdf, metadata={"Creator": None, "Producer": None, "CreationDate": None})
    return Saved([png, pdf])


def _with_index(df: pd.DataFrame, index: bool) -> pd.DataFrame:
    """The index as leading column(s) when ``index`` (an unnamed index gets an empty header, as pandas writes it)."""
    if not index:
        return df
    names = ["" if n is None else n for n in df.index.names]
    return df.rename_axis(names).reset_index()


def write_csv(df: pd.DataFrame, path: Path, index: bool = False, quantities: dict[str, str] | None = None) -> Path:
    """The one CSV writer: float columns at their quantity's precision, ``\n`` line ends.

    The quantity of each column is looked up by the file's stem and the column's name
    (:func:`valuelex.core.precision.quantity_of`); ``quantities`` (column name or pattern -> quantity)
    overrides it for this call.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    format_table(_with_index(df, index), path.stem, quantities).to_csv(path, index=False, lineterminator="\n")
    return path


def save_table(
    df: pd.DataFrame,
    name: str,
    folder: Path,
    index: bool = False,
    quantities: dict[str, str] | None = None,
) -> list[Path]:
    """Save ``name.csv`` and ``name.md`` (the same cells, at each quantity's precision) and return their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    csv, md = folder / f"{name}.csv", folder / f"{name}.md"
    table = _with_index(df, index)
    write_csv(table, csv, quantities=quantities)
    cells = format_table(table, name, quantities)
    align = ["right" if pd.api.types.is_numeric_dtype(table[c].dtype) and table[c].dtype != bool else "left"
             for c in table.columns]  # fmt: skip
    text = cells.astype(object).where(cells.notna(), "").to_markdown(index=False, disable_numparse=True, colalign=align)
    md.write_text(text + "\n", encoding="utf-8")
    return Saved([csv, md])


def save_data(
    df: pd.DataFrame,
    name: str,
    folder: Path,
    index: bool = False,
    quantities: dict[str, str] | None = None,
) -> Path:
    """Save derived data as ``folder/name.csv`` (a run's ``data/processed``), through :func:`write_csv`."""
    return write_csv(df, Path(folder) / f"{name}.csv", index=index, quantities=quantities)
