"""Benchmark: the 2-D map of the committed lexicon, valuelex.psychometrics.projection against umap-learn as it is.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_projection.py [--repeats 5] [--rounds 3]

The words and vectors are notebook 05's (the default run: ``lexicon.csv``, its template, the
embedding model). Each round starts one fresh process per implementation, alternating which goes
first, and times in it the first map (numba's compiled code loaded from its cache, or compiled when
there is none) and then ``--repeats`` more maps (their median). umap-learn is called as the project
called it before: ``umap.UMAP(n_components=2, n_neighbors=15, min_dist=0.1, metric="cosine",
random_state=seed, n_jobs=1)``. Import times are not counted (both import umap-learn).

It also prints how faithful each map is: trustworthiness (scikit-learn, cosine, 10 neighbours: how
many of each word's map neighbours are true neighbours) and the share of each word's 10 nearest
neighbours by cosine that are among its 10 nearest on the map: mean, lowest and highest over seeds 0-9.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

TIMED = r"""
import json, sys, time
import numpy as np
import umap
from valuelex.psychometrics import projection

vectors, which, repeats = np.load(sys.argv[1]), sys.argv[2], int(sys.argv[3])
if which == "umap-learn":
    def layout(seed=0):
        reducer = umap.UMAP(n_components=2, n_neighbors=15, min_dist=0.1, metric="cosine", random_state=seed, n_jobs=1)
        return reducer.fit_transform(vectors)
else:
    def layout(seed=0):
        return projection.project_2d(vectors, "umap", seed=seed)
times = []
for _ in range(1 + repeats):
    start = time.perf_counter()
    layout()
    times.append(time.perf_counter() - start)
np.save(sys.argv[4], np.stack([np.asarray(layout(seed), dtype=np.float64) for seed in range(10)]))
print(json.dumps(times))
"""


def word_vectors(folder: Path) -> tuple[Path, int]:
    """Notebook 05's vectors of the committed lexicon (default run), saved as .npy."""
    from valuelex import semantic
    from valuelex.core import paths
    from valuelex.settings import load_run

    run = load_run("default")
    lexicon = semantic.read_lexicon(paths.COMMITTED_PROCESSED / "lexicon.csv", min_count=run.semantic.min_count)
    embedder = semantic.Embedder(run.semantic.model_dir, cache_dir=folder / "cache")
    vectors = embedder.embed_words(lexicon["word"].tolist(), semantic.resolve_template(run.semantic.template))
    np.save(folder / "words.npy", vectors)
    return folder / "words.npy", len(vectors)


def faithfulness(vectors: np.ndarray, layout: np.ndarray) -> tuple[float, float]:
    from sklearn.manifold import trustworthiness

    def neighbours(d: np.ndarray) -> np.ndarray:
        d = d.copy()
        np.fill_diagonal(d, np.inf)
        return np.argsort(d, axis=1, kind="stable")[:, :10]

    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    true = neighbours(1 - unit @ unit.T)
    mapped = neighbours(np.linalg.norm(layout[:, None] - layout[None], axis=2))
    kept = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(true, mapped, strict=True)]))
    return float(trustworthiness(vectors, layout, n_neighbors=10, metric="cosine")), kept


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="maps timed after the first, per process")
    parser.add_argument("--rounds", type=int, default=3, help="fresh processes per implementation")
    args = parser.parse_args()
    implementations = ("valuelex.projection", "umap-learn")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        vectors_file, n = word_vectors(folder)
        first: dict[str, list[float]] = {k: [] for k in implementations}
        later: dict[str, list[float]] = {k: [] for k in implementations}
        for r in range(args.rounds):
            for which in implementations if r % 2 == 0 else implementations[::-1]:
                out = folder / f"{which}.npy"
                done = subprocess.run(
                    [sys.executable, "-c", TIMED, str(vectors_file), which, str(args.repeats), str(out)],
                    env={**os.environ, "PYTHONPATH": str(ROOT)},
                    capture_output=True,
                    text=True,
                )
                if done.returncode:
                    sys.exit(f"{which} failed:\n{done.stderr[-2000:]}")
                times = json.loads(done.stdout.strip().splitlines()[-1])
                first[which].append(times[0])
                later[which] += times[1:]
                print(f"round {r + 1}, {which}: first {times[0]:.2f} s, then {statistics.median(times[1:]):.2f} s")
        vectors = np.load(vectors_file).astype(np.float64)
        layouts = {which: np.load(folder / f"{which}.npy") for which in implementations}
    print(f"\n## the 2-D map of {n} words ({args.rounds} processes each, {args.repeats} maps after the first)\n")
    print("| implementation | first map in a process (median) | later maps (median) |")
    print("|---|---|---|")
    for which in implementations:
        print(f"| {which} | {statistics.median(first[which]):.2f} s | {statistics.median(later[which]):.2f} s |")
    ratio = statistics.median(later["valuelex.projection"]) / statistics.median(later["umap-learn"])
    print(f"\nlater maps: valuelex.projection takes {ratio:.2f}x umap-learn's time")
    print("\n| implementation (seeds 0-9) | trustworthiness (10 neighbours) | cosine 10-NN kept on the map |")
    print("|---|---|---|")
    for which in implementations:
        trust, kept = np.array([faithfulness(vectors, layout) for layout in layouts[which]]).T
        print(
            f"| {which} | {trust.mean():.3f} ({trust.min():.3f}-{trust.max():.3f}) "
            f"| {kept.mean():.0%} ({kept.min():.0%}-{kept.max():.0%}) |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
