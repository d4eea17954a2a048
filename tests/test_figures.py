"""Saving figures and tables: stable bytes, each number at its quantity's precision."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from pathlib import Path  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from valuelex.core import io as figures  # noqa: E402


def _loadings(noise: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    values = rng.uniform(-0.9, 0.9, (40, 3)) * (1 + noise)
    table = pd.DataFrame(values, columns=["F1", "F2", "F3"], index=[f"word{i}" for i in range(40)])
    table["h2"] = (values**2).sum(axis=1)
    return table.rename_axis("word")


def test_save_table_writes_each_quantity_at_its_precision(tmp_path: Path) -> None:
    table = pd.DataFrame(
        {
            "model": ["taxonomy", "one factor"],
            "N": [120, 120],
            "chi2": [958.908123, 22.08271],
            "df": [4.0, np.nan],
            "p": [0.00019296, 0.153318],
            "CFI": [0.461564, -0.0000001],
            "converged": [True, False],
        }
    )
    csv, md = figures.save_table(table, "cfa_model_comparison", folder=tmp_path)
    assert csv.read_text() == (
        "model,N,chi2,df,p,CFI,converged\ntaxonomy,120,958.91,4,0.000193,0.462,True\none factor,120,22.08,,0.153,0.000,False\n"
    )
    lines = md.read_text().splitlines()
    assert lines[0].split("|")[1:-1] == [
        " model      ", "   N ", "   chi2 ", "   df ", "        p ", "   CFI ", " converged   "
    ]  # fmt: skip
    assert "|:-----------|----:|" in lines[1]  # text left-aligned, numbers right-aligned
    assert "| taxonomy   | 120 | 958.91 |    4 | 0.000193 | 0.462 | True        |" == lines[2]


def test_last_digit_noise_leaves_the_bytes_unchanged(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    figures.save_table(_loadings(), "efa_loadings", folder=a, index=True)
    figures.save_table(_loadings(noise=1e-9), "efa_loadings", folder=b, index=True)
    assert (a / "efa_loadings.csv").read_bytes() == (b / "efa_loadings.csv").read_bytes()
    assert (a / "efa_loadings.md").read_bytes() == (b / "efa_loadings.md").read_bytes()
    # ...while a change a reader would see still shows
    changed = _loadings()
    changed.iloc[0, 0] += 0.01
    figures.save_table(changed, "efa_loadings", folder=b, index=True)
    assert (a / "efa_loadings.csv").read_bytes() != (b / "efa_loadings.csv").read_bytes()


def test_index_is_written_as_pandas_writes_it(tmp_path: Path) -> None:
    unnamed = pd.DataFrame({"F1": [0.5]}, index=["SS loadings"])
    figures.save_table(unnamed, "efa_variance", folder=tmp_path, index=True)
    assert (tmp_path / "efa_variance.csv").read_text() == ",F1\nSS loadings,0.500\n"
    path = figures.save_data(_loadings().head(2), "efa_loadings", folder=tmp_path, index=True)
    assert path == tmp_path / "efa_loadings.csv"
    assert path.read_text().splitlines()[0] == "word,F1,F2,F3,h2"
    assert pd.read_csv(path, index_col="word").shape == (2, 4)


def test_save_data_goes_to_the_folder_given_and_takes_an_override(tmp_path: Path) -> None:
    table = pd.DataFrame({"word": ["a"], "weight": [0.123456789]})
    saved = figures.save_data(table, "weights", tmp_path / "processed")
    assert saved.read_text() == "word,weight\na,0.1235\n"  # default: 4 significant
    figures.save_data(table, "weights", tmp_path / "processed", quantities={"weight": "loading"})
    assert (tmp_path / "processed" / "weights.csv").read_text() == "word,weight\na,0.123\n"


def _figure() -> plt.Figure:
    figures.apply_style()
    fig, ax = plt.subplots()
    ax.scatter([0.1, 0.5, 0.9], [0.3, 0.2, 0.8], label="words")
    ax.set_title("A map")
    ax.legend()
    return fig


def test_figures_have_stable_bytes_and_no_stamps(tmp_path: Path) -> None:
    first = figures.save_figure(_figure(), "map", folder=tmp_path / "a")
    second = figures.save_figure(_figure(), "map", folder=tmp_path / "b")
    plt.close("all")
    for one, two in zip(first, second, strict=True):
        assert one.read_bytes() == two.read_bytes(), one.name
    png, pdf = (p.read_bytes() for p in first)
    assert png.startswith(b"\x89PNG") and b"Software" not in png and b"matplotlib" not in png.lower()
    assert pdf.startswith(b"%PDF") and b"CreationDate" not in pdf and b"Producer" not in pdf
