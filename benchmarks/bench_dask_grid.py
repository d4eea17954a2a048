"""Benchmark: notebook 07's model grid sequentially, on loky and on a local Dask cluster (start-up included).

    .venv/bin/python benchmarks/bench_dask_grid.py [--workers 2] [--models 4 8] [--per-model 15] [--replications 2]

Times the small grid of ``tests/test_simulate_dask.py`` (or the one given) sequentially, on
``--workers`` loky processes (their start-up included) and on a local Dask cluster of as many
single-threaded workers (cluster start, grid, stop timed apart), through ``simulation.GridExecutor``
as notebook 07 uses it, and checks that the three grids are identical.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

import pandas as pd

from valuelex.methods import simulation
from valuelex.methods.simulation import SimulationSettings
from valuelex.psychometrics.efa.settings import EFASettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--models", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--per-model", type=int, nargs="+", default=[15])
    parser.add_argument("--replications", type=int, default=2)
    parser.add_argument("--words", type=int, default=40)
    parser.add_argument("--parallel-iter", type=int, default=3)
    args = parser.parse_args()
    efa = EFASettings(parallel_iter=args.parallel_iter)
    cells = SimulationSettings(
        model_counts=tuple(args.models),
        per_model=tuple(args.per_model),
        model_grid_replications=args.replications,
        seed=5,
        n_jobs=args.workers,
    )
    structure = simulation.planted_structure(n_words=args.words, seed=3)
    print(f"load average before: {os.getloadavg()}")
    t = time.perf_counter()
    sequential = simulation.model_count_grid(structure, efa, dataclasses.replace(cells, n_jobs=1), progress=False).grid
    print(f"sequential: {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    with simulation.GridExecutor(SimulationSettings(n_jobs=args.workers, backend="loky")):
        loky = simulation.model_count_grid(structure, efa, cells, progress=False).grid
    print(f"loky, {args.workers} workers (start-up included): {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    executor = simulation.GridExecutor(SimulationSettings(n_jobs=args.workers, backend="dask")).start()
    print(f"Dask local cluster of {args.workers} workers: start {time.perf_counter() - t:.1f} s", end="")
    t = time.perf_counter()
    dask = simulation.model_count_grid(structure, efa, cells, progress=False).grid
    print(f", grid {time.perf_counter() - t:.1f} s", end="")
    t = time.perf_counter()
    executor.close()
    print(f", stop {time.perf_counter() - t:.1f} s")
    pd.testing.assert_frame_equal(sequential, loky)
    pd.testing.assert_frame_equal(sequential, dask)
    print(f"the three grids are identical ({len(dask)} rows); load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
