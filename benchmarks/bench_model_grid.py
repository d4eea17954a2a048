"""Benchmark: notebook 07's models x respondents grid on 2 joblib workers against 1.

    .venv/bin/python benchmarks/bench_model_grid.py [--repeats 3] [--replications 1] [--parallel-iter 10]

Runs ``simulation.model_count_grid`` (K in 4..64 models x R in 5..100 respondents per model, the
paper-scale planted structure of 190 words, pooled and within-model EFA per panel) sequentially
(``n_jobs=1``) and on two loky processes (``n_jobs=2``), ``--repeats`` times each, alternating; prints
the median wall time of each, their ratio (the target is >= 1.8 on an idle 2-core machine), the
load average before and after, and checks that both give identical numbers. The worker start-up of
the first parallel call is timed separately (a warm-up), since a session pays it once. Timing needs
a quiet machine: on a shared one the ratio says little.

It also measures the CPU seconds of every task (one panel: simulation and both analyses, run
sequentially through the public functions) and the speed-up their sizes allow on 2 workers when
the largest are sent first, as ``model_count_grid`` does (total CPU / the busier worker's CPU): a
bound that does not depend on the machine's load. ``--repeats 0`` measures only that.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import pandas as pd

from valuelex.methods import simulation
from valuelex.methods.simulation import SimulationSettings
from valuelex.psychometrics.efa.settings import EFASettings

TARGET_SPEEDUP = 1.8


def timed_grid(
    structure: simulation.PlantedStructure, n_jobs: int, args: argparse.Namespace
) -> tuple[float, pd.DataFrame]:
    start = time.perf_counter()
    cells = SimulationSettings(
        model_counts=tuple(args.models),
        per_model=tuple(args.per_model),
        model_grid_replications=args.replications,
        seed=args.seed,
        n_jobs=n_jobs,
    )
    grid = simulation.model_count_grid(structure, EFASettings(parallel_iter=args.parallel_iter), cells, progress=False)
    return time.perf_counter() - start, grid.grid


def task_balance(structure: simulation.PlantedStructure, args: argparse.Namespace) -> None:
    """CPU seconds per task, and the 2-worker speed-up the task sizes allow (largest first, greedy)."""
    from threadpoolctl import threadpool_limits

    cpu = {}
    for k in args.models:
        for r in args.per_model:
            for rep in range(args.replications):
                start = time.process_time()
                seed = simulation.task_seed(args.seed, k, r, rep)
                panel = simulation.simulate_model_panel(structure, k, r, seed=seed)
                with threadpool_limits(limits=1):
                    simulation.recover_by_level(
                        structure, panel, EFASettings(parallel_iter=args.parallel_iter, seed=seed)
                    )
                cpu[(k, r, rep)] = time.process_time() - start
    workers = [0.0, 0.0]
    for key in sorted(cpu, key=lambda t: -t[0] * t[1]):  # the order model_count_grid sends them in
        workers[workers.index(min(workers))] += cpu[key]
    total, largest = sum(cpu.values()), max(cpu.values())
    print(f"{'task CPU seconds: total / largest':<52s} {total:8.2f} s / {largest:.2f} s")
    print(f"{'2-worker speed-up the task sizes allow':<52s} {total / max(workers):8.2f} x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, nargs="+", default=list(SimulationSettings.model_counts))
    parser.add_argument("--per-model", type=int, nargs="+", default=list(SimulationSettings.per_model))
    parser.add_argument("--replications", type=int, default=1)
    parser.add_argument("--parallel-iter", type=int, default=10)
    parser.add_argument("--words", type=int, default=simulation.PAPER_WORDS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20240419)
    args = parser.parse_args()
    structure = simulation.planted_structure(n_words=args.words, seed=args.seed)
    cells = len(args.models) * len(args.per_model) * args.replications
    print(f"grid: {cells} panels ({args.models} models x {args.per_model} per model x {args.replications})")
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())} on {os.cpu_count()} cores")

    task_balance(structure, args)
    if args.repeats < 1:
        return
    start = time.perf_counter()
    tiny = SimulationSettings(model_counts=(4,), per_model=(5,), model_grid_replications=1, n_jobs=2)
    simulation.model_count_grid(structure, EFASettings(parallel_iter=2), tiny, progress=False)
    print(f"{'worker start-up (first parallel call, tiny grid)':<52s} {time.perf_counter() - start:8.2f} s")

    times: dict[int, list[float]] = {1: [], 2: []}
    results: dict[int, pd.DataFrame] = {}
    for repeat in range(args.repeats):
        for n_jobs in (1, 2):
            seconds, results[n_jobs] = timed_grid(structure, n_jobs, args)
            times[n_jobs].append(seconds)
            print(f"repeat {repeat + 1}, n_jobs={n_jobs}: {seconds:8.2f} s")
    pd.testing.assert_frame_equal(results[1], results[2])
    one, two = statistics.median(times[1]), statistics.median(times[2])
    print(f"{'median, 1 worker':<52s} {one:8.2f} s")
    print(f"{'median, 2 workers':<52s} {two:8.2f} s")
    verdict = "meets" if one / two >= TARGET_SPEEDUP else "misses"
    print(f"{'speed-up (1 worker / 2 workers)':<52s} {one / two:8.2f} x ({verdict} the {TARGET_SPEEDUP} x target)")
    print("identical numbers from 1 and 2 workers: yes")
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
