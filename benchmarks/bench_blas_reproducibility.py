"""Do the tables survive another machine's floating point? Runs the whole pipeline under several
BLAS / SIMD settings that stand in for other CPUs, and compares the outputs.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_blas_reproducibility.py [--out DIR] [--reuse]
    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_blas_reproducibility.py --map   # the 2-D map only (~4 min)

Each configuration runs ``./run_all.sh`` (venv already present) with its environment, writing to
``DIR/<config>-<precision>/{processed,figures}`` through ``VALUELEX_PROCESSED``/``VALUELEX_FIGURES``
(the committed files are not touched). ``full`` runs set ``VALUELEX_FULL_PRECISION=1`` (every
digit written), ``rounded`` runs use the precision rules of ``valuelex/core/precision.py``.

The configurations (``--configs``; names from :data:`CONFIGS`):

- ``native-1t``: one thread for OpenBLAS, OpenMP and MKL, the kernels this CPU selects.
- ``native-1t-again``: the same again (same machine, same settings: must give the same bytes).
- ``haswell-2t``: two threads, OpenBLAS Haswell kernels (AVX2), torch and MKL/oneDNN limited to
  AVX2, numba compiling for Haswell (its own features, not the host's): a CPU without AVX-512.
- ``sandybridge-2t``: two threads, OpenBLAS Sandybridge kernels (AVX), torch without vector kernels
  (``ATEN_CPU_CAPABILITY=default``), numba for ``generic`` x86-64 (no FMA, no AVX), numpy without
  its AVX2/AVX-512 loops, glibc's libm without its FMA/AVX2 variants: an old CPU.
- ``generic-1t``: the host's BLAS kernels on one thread, numba for ``generic`` only.

``--map`` runs only the 2-D map of the committed lexicon (notebook 05's vectors) under each
configuration, with umap-learn as it is (``umap.UMAP(metric="cosine", random_state=0)``) and with
``valuelex.psychometrics.projection`` (the default), and prints how far each word moves from the first
configuration, the Procrustes disparity (scipy: after the best shift, rotation and scaling) and how
many of each word's 10 nearest neighbours on the map are kept. For scale, it prints the same for
umap-learn's map with a real change of setting (seeds 1 and 2, ``n_neighbors`` 10 and 30). Then the
largest difference of ``valuelex.psychometrics.projection``'s intermediate values (distances, graph, curve,
initialisation, and ``pow`` as its descent calls it on 500,000 squared distances) before the roundings
that make its map the same on every CPU, and how many of its maps for seeds 0-199 (``--map-seeds``)
have the same bits as the first configuration's.

Prints, per precision, which files differ from the first configuration (bytes), the largest
numeric difference per differing table, and, for rounded runs, what ``verify``'s comparison
(``valuelex.verify.compare_tables``) says. Wall times vary with machine load; the byte and
tolerance comparisons do not.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from valuelex.app import verify  # noqa: E402

THREADS_1 = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
THREADS_2 = {"OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}
CONFIGS: dict[str, dict[str, str]] = {
    "native-1t": THREADS_1,
    "native-1t-again": THREADS_1,
    "haswell-2t": {
        **THREADS_2,
        "OPENBLAS_CORETYPE": "Haswell",
        "ATEN_CPU_CAPABILITY": "avx2",
        "MKL_ENABLE_INSTRUCTIONS": "AVX2",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "NUMBA_CPU_NAME": "haswell",
        "NUMBA_CPU_FEATURES": "",  # the named CPU's features (unset, numba would add the host's)
    },
    "sandybridge-2t": {
        **THREADS_2,
        "OPENBLAS_CORETYPE": "Sandybridge",
        "ATEN_CPU_CAPABILITY": "default",
        "MKL_ENABLE_INSTRUCTIONS": "AVX",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "NUMBA_CPU_NAME": "generic",
        "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL AVX512_SPR",
        "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2,-FMA,-AVX512F",
    },
    "generic-1t": {**THREADS_1, "NUMBA_CPU_NAME": "generic"},
}
OUTPUT_SUFFIXES = (".csv", ".json", ".md", ".png", ".pdf")


def run(config: str, precision: str, out: Path, reuse: bool) -> Path:
    """Run the pipeline once into ``out/<config>-<precision>``; return that folder."""
    folder = out / f"{config}-{precision}"
    done = folder / "done"
    if reuse and done.exists():
        print(f"[{config}-{precision}] reusing {folder}", flush=True)
        return folder
    for sub in ("processed", "figures"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        **CONFIGS[config],
        "PYTHONPATH": str(ROOT),
        "PYTHONHASHSEED": "0",
        "VALUELEX_PROCESSED": str(folder / "processed"),
        "VALUELEX_FIGURES": str(folder / "figures"),
    }
    env.pop("VALUELEX_FULL_PRECISION", None)
    if precision == "full":
        env["VALUELEX_FULL_PRECISION"] = "1"
    started = time.monotonic()
    proc = subprocess.run(["./run_all.sh"], cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - started
    (folder / "run_all.log").write_text(proc.stdout + proc.stderr, encoding="utf-8")
    if "all notebooks done" not in proc.stdout:
        sys.exit(f"[{config}-{precision}] run_all.sh failed (exit {proc.returncode}); see {folder / 'run_all.log'}")
    done.write_text(f"{seconds:.0f}\n")
    print(f"[{config}-{precision}] {seconds:.0f} s, run_all.sh exit {proc.returncode}", flush=True)
    return folder


def outputs(folder: Path) -> dict[str, Path]:
    """Every output file of a run, by its name relative to the run folder (the embedding cache and manifest excluded)."""
    return {
        str(p.relative_to(folder)): p
        for sub in ("processed", "figures")
        for p in sorted((folder / sub).glob("*"))
        if p.suffix in OUTPUT_SUFFIXES and p.name not in ("run_manifest.json", "INDEX.md")
    }


def largest_difference(a: Path, b: Path) -> str:
    """The largest absolute and relative difference between two CSVs' numbers (same shape), or what else differs."""
    x = pd.read_csv(io.StringIO(a.read_text(encoding="utf-8")))
    y = pd.read_csv(io.StringIO(b.read_text(encoding="utf-8")))
    if x.shape != y.shape or list(x.columns) != list(y.columns):
        return f"shape {x.shape} -> {y.shape}"
    numeric = [c for c in x.columns if pd.api.types.is_float_dtype(x[c]) and pd.api.types.is_float_dtype(y[c])]
    text = [c for c in x.columns if c not in numeric and not x[c].astype(str).equals(y[c].astype(str))]
    worst, where = 0.0, ""
    worst_rel = 0.0
    for c in numeric:
        diff = np.abs(x[c].to_numpy() - y[c].to_numpy())
        if np.nanmax(diff, initial=0.0) > worst:
            worst, where = float(np.nanmax(diff)), c
        scale = np.maximum(np.abs(x[c].to_numpy()), 1e-300)
        worst_rel = max(worst_rel, float(np.nanmax(diff / scale, initial=0.0)))
    parts = [f"max |diff| {worst:.2g} ({where}), max rel {worst_rel:.2g}"] if worst else []
    if text:
        parts.append(f"text/integers differ in {', '.join(text[:4])}")
    return "; ".join(parts) or "same numbers, different text"


def compare(runs: dict[str, Path], precision: str) -> None:
    names = list(runs)
    base_name, base = names[0], outputs(runs[names[0]])
    print(f"\n## {precision} precision: each run against {base_name}\n")
    for name in names[1:]:
        other = outputs(runs[name])
        differing = [f for f in base if f in other and base[f].read_bytes() != other[f].read_bytes()]
        missing = [f for f in base if f not in other]
        tables = [f for f in base if f.endswith(".csv")]
        figures = [f for f in base if f.endswith((".png", ".pdf"))]
        print(
            f"### {name}: {len(differing)} of {len(base)} files differ in bytes "
            f"({sum(f in differing for f in tables)} of {len(tables)} CSV tables, "
            f"{sum(f in differing for f in figures)} of {len(figures)} figures)"
            + (f"; missing: {', '.join(missing)}" if missing else "")
        )
        for f in differing:
            if f.endswith(".csv"):
                note = largest_difference(base[f], other[f])
                if precision == "rounded":
                    real = verify.compare_tables(
                        base[f].read_text(encoding="utf-8"), other[f].read_text(encoding="utf-8"), f
                    )
                    note += "; verify: " + (f"{len(real)} real differences: {real[0]}" if real else "within tolerance")
                print(f"- {f}: {note}")
            elif f.endswith(".png"):
                print(f"- {f}: {verify._png_change(base[f].read_bytes(), other[f].read_bytes()):.3%} of pixels changed")
            else:
                print(f"- {f}")


MAP_SCRIPT = r"""
import sys
import numpy as np
import umap
from valuelex.psychometrics import projection
vectors, out, variants, seeds = np.load(sys.argv[1]), sys.argv[2], sys.argv[3] == "variants", int(sys.argv[4])
def theirs(seed=0, n_neighbors=15):
    reducer = umap.UMAP(n_components=2, n_neighbors=n_neighbors, min_dist=0.1, metric="cosine", random_state=seed, n_jobs=1)
    return reducer.fit_transform(vectors).astype(np.float64)
layouts = {"umap-learn": theirs(), "valuelex.projection": projection.project_2d(vectors, "umap", seed=0)}
# valuelex.psychometrics.projection's intermediate values before their rounding (prepare_descent's steps, unrounded)
import scipy.sparse
from umap.spectral import spectral_layout
from umap.umap_ import find_ab_params, fuzzy_simplicial_set
distances = projection.cosine_distances(vectors)
knn = np.argsort(distances, axis=1, kind="stable")[:, :15]
random_state = np.random.RandomState(0)
graph, _, _ = fuzzy_simplicial_set(distances, 15, random_state, "precomputed", knn_indices=knn,
                                   knn_dists=np.take_along_axis(distances, knn, axis=1))
graph = scipy.sparse.coo_matrix(graph)
graph.sum_duplicates()
graph.data[graph.data < graph.data.max() / 500.0] = 0.0
graph.eliminate_zeros()
init = spectral_layout(distances, graph, 2, random_state, metric="precomputed")
init = init * np.sign(init[np.abs(init).argmax(axis=0), [0, 1]]) * (10.0 / np.abs(init).max())
raw = {"raw distances": distances, "raw graph memberships": graph.toarray(),
       "raw curve a, b": np.array(find_ab_params(1.0, 0.1)), "raw initialisation (scaled to +-10)": init}
import math, numba
@numba.njit
def powers(x, b):  # the descent's pow calls (squared distances to the powers b - 1 and b), as compiled there
    out = np.empty((2, len(x)))
    for i in range(len(x)):
        out[0, i] = math.pow(x[i], b - 1.0)
        out[1, i] = math.pow(x[i], b)
    return out
squared = np.exp(np.random.default_rng(0).uniform(np.log(1e-4), np.log(400.0), 500_000))
raw["raw pow results"] = powers(squared, projection._significant(find_ab_params(1.0, 0.1)[1], projection.CURVE_DIGITS))
layouts.update(raw)
layouts["valuelex.projection seeds"] = np.stack([projection.project_2d(vectors, "umap", seed=s) for s in range(seeds)])
if variants:  # settings changed on this configuration: how far a real change moves umap-learn's map
    layouts.update({"umap-learn seed 1": theirs(seed=1), "umap-learn seed 2": theirs(seed=2),
                    "umap-learn n_neighbors 10": theirs(n_neighbors=10), "umap-learn n_neighbors 30": theirs(n_neighbors=30)})
np.savez(out, **layouts)
"""


def map_vectors(folder: Path) -> Path:
    """Notebook 05's vectors of the committed lexicon (default run: its template and minimum count)."""
    from valuelex import semantic
    from valuelex.core import paths
    from valuelex.settings import load_run

    run = load_run("default")
    lexicon = semantic.read_lexicon(paths.COMMITTED_PROCESSED / "lexicon.csv", min_count=run.semantic.min_count)
    embedder = semantic.Embedder(run.semantic.model_dir, cache_dir=folder / "embeddings")
    vectors = embedder.embed_words(lexicon["word"].tolist(), semantic.resolve_template(run.semantic.template))
    np.save(folder / "words.npy", vectors)
    return folder / "words.npy"


def map_only(configs: list[str], out: Path, seeds: int) -> None:
    """The 2-D map of the committed lexicon under each configuration: umap-learn as it is, and ours.

    On the first configuration, umap-learn's map is also made with other settings (seeds 1 and 2,
    n_neighbors 10 and 30): what a comparison of the map's meaning would have to tell apart from
    the CPU's noise.
    """
    from scipy.spatial import procrustes

    out.mkdir(parents=True, exist_ok=True)
    vectors_file = map_vectors(out)
    layouts: dict[str, dict[str, np.ndarray]] = {}
    for config in configs:
        env = {**os.environ, **CONFIGS[config], "PYTHONPATH": str(ROOT)}
        file = out / f"{config}.npz"
        variants = "variants" if config == configs[0] else "-"
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-c", MAP_SCRIPT, str(vectors_file), str(file), variants, str(seeds)],
            env=env,
            capture_output=True,
            text=True,
        )
        if proc.returncode:
            sys.exit(f"[{config}] failed:\n{proc.stderr[-2000:]}")
        print(f"[{config}] {time.monotonic() - started:.0f} s", flush=True)
        with np.load(file) as saved:
            layouts[config] = {name: saved[name] for name in saved.files}

    def neighbours(layout: np.ndarray) -> np.ndarray:
        d = np.linalg.norm(layout[:, None] - layout[None], axis=2)
        np.fill_diagonal(d, np.inf)
        return np.argsort(d, axis=1, kind="stable")[:, :10]

    def row(label: str, kind: str, a: np.ndarray, b: np.ndarray) -> None:
        move = float(np.linalg.norm(a - b, axis=1).max())
        disparity = procrustes(a, b)[2]
        kept = np.mean([len(set(x) & set(y)) / 10 for x, y in zip(neighbours(a), neighbours(b), strict=True)])
        print(f"| {label} | {kind} | {np.array_equal(a, b)} | {move:.3g} | {disparity:.3g} | {kept:.0%} |")

    base = configs[0]
    words, width = len(np.load(vectors_file)), np.ptp(layouts[base]["umap-learn"], axis=0)
    print(
        f"\n## the map of {words} words: each against {base} (umap-learn's map spans {width[0]:.1f} x {width[1]:.1f})\n"
    )
    print("| configuration or setting | layout | same bits | largest move | Procrustes disparity | 10-NN kept |")
    print("|---|---|---|---|---|---|")
    for config in configs[1:]:
        for kind in ("umap-learn", "valuelex.projection"):
            row(config, kind, layouts[base][kind], layouts[config][kind])
    for name in layouts[base]:
        if name.startswith("umap-learn "):
            row(f"{base}, {name[len('umap-learn ') :]}", "umap-learn", layouts[base]["umap-learn"], layouts[base][name])

    print("\n| configuration | valuelex.projection's values before their rounding: largest difference |")
    print("|---|---|")
    for config in configs[1:]:
        found = {
            k: float(np.abs(layouts[base][k] - layouts[config][k]).max()) for k in layouts[base] if k.startswith("raw")
        }
        pows = layouts[base]["raw pow results"] != layouts[config]["raw pow results"]
        found["pow results that differ"] = f"{pows.sum()} of {pows.size}"
        ours, theirs = layouts[base]["valuelex.projection seeds"], layouts[config]["valuelex.projection seeds"]
        same = sum(np.array_equal(a, b) for a, b in zip(ours, theirs, strict=True))
        found[f"maps of seeds 0-{len(ours) - 1} with the same bits"] = f"{same} of {len(ours)}"
        print(
            f"| {config} | "
            + "; ".join(
                f"{k.removeprefix('raw ')}: {v:.2g}" if isinstance(v, float) else f"{k}: {v}" for k, v in found.items()
            )
            + " |"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "blas_reproducibility")
    parser.add_argument("--configs", default="native-1t,native-1t-again,haswell-2t,sandybridge-2t")
    parser.add_argument("--precision", default="full,rounded", help="full, rounded or both (comma-separated)")
    parser.add_argument("--reuse", action="store_true", help="keep runs already in --out")
    parser.add_argument("--map", action="store_true", help="only the 2-D map, umap-learn against ours")
    parser.add_argument("--map-seeds", type=int, default=200, help="with --map: our map for seeds 0..N-1 too")
    args = parser.parse_args()
    configs = args.configs.split(",")
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        sys.exit(f"unknown configuration(s) {unknown}; known: {', '.join(CONFIGS)}")
    if args.map:
        map_only(
            [c for c in configs if not c.endswith("-again")] + ["generic-1t"] * ("generic-1t" not in configs),
            args.out / "map",
            args.map_seeds,
        )
        return 0
    for precision in args.precision.split(","):
        chosen = [c for c in configs if not (precision == "full" and c.endswith("-again"))]
        runs = {c: run(c, precision, args.out, args.reuse) for c in chosen}
        compare(runs, precision)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
