"""``python -m valuelex.app.verify``: real changes fail, floating-point noise passes.

The committed tables are real ones (this repository's ``figures/`` and ``data/processed/`` at git
HEAD), committed again into a temporary git repository after passing through the table writer.
"""

from __future__ import annotations

import io
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from valuelex.app import verify
from valuelex.core import io as figures
from valuelex.core import paths

TABLES = {  # committed file -> how the notebooks write it
    "figures/efa_loadings.csv": "table",
    "figures/cfa_model_comparison.csv": "table",
    "data/processed/efa_word_factors.csv": "data",
    "data/processed/semantic_clusters.csv": "data",
    "data/processed/lexicon.csv": "data",
}
FIGURES = ("figures/efa_scree.png", "figures/efa_scree.pdf")


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=test", "-c", "user.email=test@example.org", *args],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


def _head(name: str) -> bytes:
    """A file of this repository as git HEAD holds it (skip when this is not a git clone)."""
    try:
        return subprocess.run(
            ["git", "-C", str(paths.ROOT), "show", f"HEAD:{name}"], capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git clone: verify compares with git HEAD")


def _read(name: str) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(_head(name)))


def _write(frame: pd.DataFrame, name: str, root: Path) -> None:
    folder = root / Path(name).parent
    if TABLES[name] == "table":
        figures.save_table(frame, Path(name).stem, folder=folder)
    else:
        figures.save_data(frame, Path(name).stem, folder=folder)


def _perturbed(frame: pd.DataFrame, relative: float, seed: int = 0) -> pd.DataFrame:
    """Every float multiplied by (1 + e), |e| <= relative: what another BLAS kernel does to the last bits."""
    rng = np.random.default_rng(seed)
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_float_dtype(out[column]):
            out[column] = out[column] * (1 + rng.uniform(-relative, relative, len(out)))
    return out


@pytest.fixture()
def repo(tmp_path: Path) -> dict[str, Path]:
    """A git repository holding real tables (written by the table writer) and figures, and a copy to regenerate into."""
    root = tmp_path / "repo"
    for name in TABLES:
        _write(_read(name), name, root)
    for name in FIGURES:
        (root / name).write_bytes(_head(name))
    _git(root, "init", "-q")
    _git(root, "add", ".")
    _git(root, "commit", "-q", "-m", "outputs")
    now = tmp_path / "now"
    shutil.copytree(root / "figures", now / "figures")
    shutil.copytree(root / "data" / "processed", now / "processed")
    return {"root": root, "figures": now / "figures", "processed": now / "processed"}


def _verify(repo: dict[str, Path]) -> verify.VerifyResult:
    return verify.verify(root=repo["root"], figures_dir=repo["figures"], processed_dir=repo["processed"])


def _regenerate(repo: dict[str, Path], name: str, frame: pd.DataFrame) -> None:
    """Write ``frame`` where the run would have written the regenerated ``name``."""
    if TABLES[name] == "table":
        figures.save_table(frame, Path(name).stem, folder=repo["figures"])
    else:
        figures.save_data(frame, Path(name).stem, folder=repo["processed"])


def test_an_untouched_run_is_byte_identical(repo: dict[str, Path]) -> None:
    result = _verify(repo)
    assert result.passed
    assert result.metrics() == {
        "tables": 5, "tables_within_tolerance": 5, "tables_identical": 5, "differences": 0, "missing": 0,
        "figures": 2, "figures_identical": 2, "passed": True,
    }  # fmt: skip
    text = result.text()
    assert text.splitlines()[0].startswith("reproduced: 5 of 5 tables within tolerance (5 byte-identical")
    assert "git status clean" in text


def test_last_digit_noise_is_ignored(repo: dict[str, Path]) -> None:
    for name in TABLES:
        _regenerate(repo, name, _perturbed(_read(name), 1e-9))
    result = _verify(repo)
    assert result.passed, result.text()
    assert result.metrics()["differences"] == 0


def test_a_loading_changed_in_the_second_decimal_is_caught(repo: dict[str, Path]) -> None:
    table = _read("figures/efa_loadings.csv")
    word = table["word"].iloc[2]
    table.loc[2, "F1"] += 0.01
    _regenerate(repo, "figures/efa_loadings.csv", _perturbed(table, 1e-9))
    result = _verify(repo)
    assert not result.passed
    found = result.tables["figures/efa_loadings.csv"]
    assert len(found) == 1
    d = found[0]
    assert (d.row, d.column) == (f"row (word={word})", "F1")
    assert round(float(d.now) - float(d.committed), 3) == 0.01
    text = result.text()
    assert "reproduced: 4 of 5 tables within tolerance" in text
    assert f"figures/efa_loadings.csv: row (word={word}), column F1: {d.committed} -> {d.now}" in text
    assert "NOT reproduced" in text


def test_a_missing_row_is_caught(repo: dict[str, Path]) -> None:
    lexicon = _read("data/processed/lexicon.csv")
    gone = lexicon["word"].iloc[5]
    _regenerate(repo, "data/processed/lexicon.csv", lexicon.drop(index=5))
    found = _verify(repo).tables["data/processed/lexicon.csv"]
    assert [(d.row, d.committed, d.now) for d in found] == [(f"row (word={gone})", "present", "missing")]


def test_a_changed_assignment_is_caught(repo: dict[str, Path]) -> None:
    factors = _read("data/processed/efa_word_factors.csv")
    word, factor = factors.loc[0, "word"], factors.loc[0, "factor"]
    factors.loc[0, "factor"] = "F2" if factor != "F2" else "F3"
    _regenerate(repo, "data/processed/efa_word_factors.csv", factors)
    clusters = _read("data/processed/semantic_clusters.csv")
    clusters.loc[3, "nearest_dimension"] = (
        "Integrity" if clusters.loc[3, "nearest_dimension"] != "Integrity" else "Competence"
    )
    _regenerate(repo, "data/processed/semantic_clusters.csv", _perturbed(clusters, 1e-9))
    result = _verify(repo)
    assert not result.passed
    changed = result.tables["data/processed/efa_word_factors.csv"]
    assert [(d.row, d.column, d.committed) for d in changed] == [(f"row (word={word})", "factor", factor)]
    assert [d.column for d in result.tables["data/processed/semantic_clusters.csv"]] == ["nearest_dimension"]


def test_a_chi_square_beyond_its_tolerance_is_caught_and_noise_of_a_heywood_case_is_not(repo: dict[str, Path]) -> None:
    table = _read("figures/cfa_model_comparison.csv")
    # on 120 respondents no model is estimable (chi2 blank): fitted values of another data set stand in
    table["chi2"] = np.linspace(958.906, 120.25, len(table))
    _write(table, "figures/cfa_model_comparison.csv", repo["root"])
    _git(repo["root"], "commit", "-q", "-am", "a table with chi-squares")
    table = pd.read_csv(repo["root"] / "figures/cfa_model_comparison.csv")
    noisy = table.copy()
    noisy["chi2"] = noisy["chi2"] * (1 + 1e-4)  # the 4th digit moving, as in a Heywood case on another machine
    _regenerate(repo, "figures/cfa_model_comparison.csv", noisy)
    assert _verify(repo).passed
    table.loc[0, "chi2"] = table.loc[0, "chi2"] * 1.01
    _regenerate(repo, "figures/cfa_model_comparison.csv", table)
    found = _verify(repo).tables["figures/cfa_model_comparison.csv"]
    assert [d.column for d in found] == ["chi2"]


def test_figures_must_exist_but_their_bytes_are_only_reported(repo: dict[str, Path]) -> None:
    png = repo["figures"] / "efa_scree.png"
    from PIL import Image

    image = Image.open(png)
    image.putpixel((5, 5), (0, 0, 0, 255))
    image.save(png)
    result = _verify(repo)
    assert result.passed and result.figures["figures/efa_scree.png"] > 0
    assert "1 differ in bytes" in result.text()
    # the last line says in words that only a drawing differs
    assert result.text().splitlines()[-1] == (
        "verdict: reproduced; every table is byte-identical to the committed one; only drawings differ: "
        f"1 of 2 drawings (PNG/PDF) differ in bytes (PNG: at most {result.figures['figures/efa_scree.png']:.2%} "
        "of pixels changed), drawn from the tables checked here"
    )
    # ... and, with last-digit noise in a table too, what differs beyond the drawing
    loadings = pd.read_csv(repo["figures"] / "efa_loadings.csv")
    loadings.loc[0, "F1"] = float(loadings.loc[0, "F1"]) + 0.001  # one unit of the last digit: within tolerance
    loadings.to_csv(repo["figures"] / "efa_loadings.csv", index=False)
    result = _verify(repo)
    assert result.passed
    assert (
        result.text()
        .splitlines()[-1]
        .startswith(
            "verdict: reproduced within tolerance; nothing differs beyond floating-point noise: 1 of 5 tables differ in "
            "the last digits, within valuelex/core/precision.py; 1 of 2 drawings (PNG/PDF) differ in bytes"
        )
    )
    (repo["figures"] / "efa_scree.pdf").unlink()
    result = _verify(repo)
    assert not result.passed and result.missing == ["figures/efa_scree.pdf"]
    assert "missing: figures/efa_scree.pdf" in result.text()


def test_cli_against_this_repositorys_committed_tables(tmp_path: Path) -> None:
    """The command as run_all.sh runs it: copies of HEAD's files pass; one changed loading fails with exit 1."""
    env = {
        **os.environ,
        "PYTHONPATH": str(paths.ROOT),
        "VALUELEX_FIGURES": str(tmp_path / "figures"),
        "VALUELEX_PROCESSED": str(tmp_path / "processed"),
    }
    listed = verify.committed_files(paths.ROOT)
    if not listed:
        pytest.skip("not a git clone")
    for name, data in listed.items():
        target = tmp_path / ("figures" if name.startswith("figures/") else "processed") / Path(name).name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    command = [sys.executable, "-m", "valuelex.app.verify"]
    ok = subprocess.run(command, env=env, capture_output=True, text=True)
    tables = sum(name.endswith((".csv", ".json")) for name in listed)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith(f"reproduced: {tables} of {tables} tables within tolerance")
    loadings = pd.read_csv(tmp_path / "figures" / "efa_loadings.csv")
    loadings.loc[0, "F1"] = round(loadings.loc[0, "F1"] - 0.05, 3)
    loadings.to_csv(tmp_path / "figures" / "efa_loadings.csv", index=False)
    bad = subprocess.run(command, env=env, capture_output=True, text=True)
    assert bad.returncode == 1
    assert f"reproduced: {tables - 1} of {tables} tables within tolerance" in bad.stdout
    assert f"figures/efa_loadings.csv: row (word={loadings.loc[0, 'word']}), column F1:" in bad.stdout


# --------------------------------------------------------------------------- another machine's floating point

OTHER_CPU = {  # another CPU's kernels and thread count (see benchmarks/bench_blas_reproducibility.py)
    "OPENBLAS_CORETYPE": "Sandybridge",  # AVX only: runs on any x86-64 CPU of the last decade
    "OPENBLAS_NUM_THREADS": "2",
    "OMP_NUM_THREADS": "2",
}
THIS_CPU = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}  # the kernels this CPU selects


@pytest.mark.slow
def test_factor_analysis_tables_survive_other_blas_kernels(processed_pipeline: dict, tmp_path: Path) -> None:
    """Notebooks 03-04 under two BLAS settings: every table within tolerance of the other, most byte-identical."""
    from tests.conftest import run_notebook

    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("the OpenBLAS kernel names below are x86-64 ones")
    folders = {}
    for name, blas in (("this", THIS_CPU), ("other", OTHER_CPU)):
        root = tmp_path / name
        shutil.copytree(processed_pipeline["VALUELEX_PROCESSED"], root / "processed")
        (root / "figures").mkdir()
        env = {"VALUELEX_PROCESSED": str(root / "processed"), "VALUELEX_FIGURES": str(root / "figures"), **blas}
        for notebook in ("03_efa", "04_cfa"):
            run_notebook(notebook, root, {"n_boot": 20, "parallel_iter": 10} if notebook == "03_efa" else {}, env)
        folders[name] = root
    tables = sorted((folders["this"] / "figures").glob("*.csv")) + sorted((folders["this"] / "processed").glob("*.csv"))
    moved = []
    for table in tables:
        other = folders["other"] / table.parent.name / table.name
        name = f"{table.parent.name}/{table.name}"
        assert verify.compare_tables(table.read_text(), other.read_text(), name) == [], name
        if table.read_bytes() != other.read_bytes():
            moved.append(name)
    print(f"{len(tables)} tables, {len(tables) - len(moved)} byte-identical; within tolerance only: {moved}")
    assert len(tables) >= 20
    # measured: only the CFA estimates of a Heywood case move a rounded digit (cfa_loadings.csv)
    assert len(moved) <= 2, moved


EMBED_SCRIPT = """
import sys
import numpy as np
from valuelex import semantic
vectors = semantic.Embedder(cache_dir=sys.argv[1]).embed_words(["honesty", "fairness", "care", "transparency"])
sys.stdout.write(vectors.tobytes().hex())
"""


@pytest.mark.slow
def test_embeddings_are_the_same_bits_with_other_cpu_kernels(tmp_path: Path) -> None:
    """float64 inference rounded to float32: AVX-512, AVX2 and plain kernels store identical vectors."""
    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("the ATen capability names below are x86-64 ones")
    outputs = {}
    for capability in ("native", "avx2", "default"):
        env = {**os.environ, "PYTHONPATH": str(paths.ROOT)}
        env.pop("ATEN_CPU_CAPABILITY", None)
        if capability != "native":
            env["ATEN_CPU_CAPABILITY"] = capability
            env["MKL_ENABLE_INSTRUCTIONS"] = "AVX2" if capability == "avx2" else "AVX"
        run = subprocess.run(
            [sys.executable, "-c", EMBED_SCRIPT, str(tmp_path / capability)], env=env, capture_output=True, text=True
        )
        assert run.returncode == 0, run.stderr[-2000:]
        outputs[capability] = run.stdout
    assert len(outputs["native"]) == 4 * 384 * 4 * 2  # four float32 vectors, in hex
    assert outputs["native"] == outputs["avx2"] == outputs["default"]


# --------------------------------------------------------------------------- a real change is caught everywhere


def _changed(text: str) -> str:
    """A cell changed for real: a number by 5% of its column's largest value (set by the caller), else other text."""
    if text in ("True", "False"):
        return "False" if text == "True" else "True"
    if verify._is_integer_literal(text):
        return str(int(text) + 1)
    return text + "_changed"


def test_a_real_change_to_any_committed_table_is_caught() -> None:
    """Every committed table, every kind of column: one cell changed for real is a difference.

    A number moves by 5% of its column's largest absolute value (a change a reader would see; far
    beyond noise), text gets other text, a whole number +1, a boolean flips. The tolerances must not
    hide it, and the rows must be matched (by name or position) so that it is found where it is.
    The first 60 rows of each table stand for the whole (tolerances are per column, not per row).
    """
    committed = {name: data for name, data in verify.committed_files(paths.ROOT).items() if name.endswith(".csv")}
    if not committed:
        pytest.skip("not a git clone")
    checked = 0
    for name, data in sorted(committed.items()):
        # the first 60 rows: enough to hold every kind of column; the comparison is per cell
        frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, nrows=60)
        text = frame.to_csv(index=False)
        if frame.empty:
            continue
        kinds: dict[str, str] = {}
        for column in frame.columns:
            values = [v for v in frame[column] if v != ""]
            if not values:
                continue
            if all(verify._parses(v) and not verify._is_integer_literal(v) for v in values):
                kind = "float"
            elif all(verify._is_integer_literal(v) for v in values):
                kind = "integer"
            elif set(values) <= {"True", "False"}:
                kind = "boolean"
            else:
                kind = "text"
            kinds.setdefault(kind, column)  # the first column of each kind
        for kind, column in kinds.items():
            row = next(i for i, v in enumerate(frame[column]) if v != "")
            changed = frame.copy()
            old = changed.loc[row, column]
            if kind == "float":
                scale = max(abs(float(v)) for v in frame[column] if v != "")
                if scale == 0 or not np.isfinite(scale):
                    continue
                new = float(old) + 0.05 * scale
                changed.loc[row, column] = repr(new)
            else:
                changed.loc[row, column] = _changed(old)
            found = verify.compare_tables(text, changed.to_csv(index=False), name)
            assert found, f"{name}, column {column} ({kind}): {old} -> {changed.loc[row, column]} not caught"
            assert any(d.column == column or d.row.startswith("row (") for d in found), (name, column, found)
            checked += 1
    assert checked > 150, checked  # 73 tables, 1-4 kinds of column each


@pytest.mark.slow
def test_a_real_change_to_the_map_is_caught(repo: dict[str, Path], tmp_path: Path) -> None:
    """The map of the committed words (default settings) reproduces; another n_neighbors or seed does not."""
    from valuelex import semantic

    name = "data/processed/semantic_clusters.csv"
    table = _read(name)
    vectors = semantic.Embedder(cache_dir=tmp_path / "embeddings").embed_words(table["word"].tolist())
    layout = semantic.project_2d(vectors, "umap", seed=0)
    _write(table.assign(x=layout[:, 0], y=layout[:, 1]), name, repo["root"])
    # the committed map is already this one when the outputs were made by the same code: an empty commit then
    _git(repo["root"], "commit", "-q", "--allow-empty", "-am", "the map of the default settings")
    committed = pd.read_csv(repo["root"] / name)
    again = semantic.project_2d(vectors, "umap", seed=0)
    _regenerate(repo, name, committed.assign(x=again[:, 0], y=again[:, 1]))
    result = _verify(repo)
    assert result.passed and name in result.identical_tables
    for changed in ({"n_neighbors": 10}, {"seed": 1}):
        other = semantic.project_2d(vectors, "umap", **{"seed": 0, **changed})
        _regenerate(repo, name, committed.assign(x=other[:, 0], y=other[:, 1]))
        found = _verify(repo).tables[name]
        assert {d.column for d in found} == {"x", "y"}, changed
        assert len(found) > len(table), changed  # most words moved (10 listed, the rest counted)
