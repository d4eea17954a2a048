"""Where the simulation grids run: joblib with its loky or Dask backend (``GridExecutor``), one seed per task."""

from __future__ import annotations

import os

import numpy as np

from .settings import SimulationSettings


def run_tasks(function, tasks: list[tuple], n_jobs: int | None = None, progress: bool = True, label: str = "") -> list:
    """``function(*task)`` for every task through joblib (the active backend), with a progress bar.

    Results come back in the order of ``tasks``. ``n_jobs=None`` takes the number of workers from
    ``joblib.parallel_config`` (1 when none is set): that is how a Dask or Ray backend is used.
    """
    from joblib import Parallel, delayed
    from tqdm import tqdm

    results = Parallel(n_jobs=n_jobs, return_as="generator")(delayed(function)(*task) for task in tasks)
    if progress:
        # disable=None: shown on a terminal, not in a notebook's output (no progress-bar block in the tutorial)
        results = tqdm(results, total=len(tasks), desc=label or function.__name__, mininterval=2.0, disable=None)
    return list(results)


class GridExecutor:
    """Where the simulation grids run: joblib's backend, chosen by the settings (``simulation.backend``).

    ``loky`` (the default): ``n_jobs`` local processes. ``dask``: joblib's Dask backend
    (``dask.distributed``), on the cluster whose scheduler is at ``dask_scheduler`` (e.g.
    ``tcp://10.0.0.5:8786``), or, when that is null, on a local cluster of ``n_jobs``
    single-threaded worker processes (-1: one per core). joblib's Dask backend uses every worker of
    the cluster whatever ``n_jobs`` says, but ``n_jobs: 1`` still means "sequential, here". Every task seeds itself, so the backend changes the speed,
    never the numbers (``tests/test_simulate_dask.py``). ``start()`` makes it joblib's backend in
    this thread until ``close()`` (a notebook starts it once); it is also a context manager.
    """

    def __init__(self, settings: SimulationSettings):
        if settings.backend not in ("loky", "dask"):
            raise ValueError(f"simulation.backend must be loky or dask, got {settings.backend!r}")
        self.settings = settings
        self.client = None
        self._cluster = None
        self._config = None

    def start(self) -> GridExecutor:
        import joblib

        if self._config is not None:
            return self
        if self.settings.backend == "dask":
            from dask.distributed import Client, LocalCluster

            if self.settings.dask_scheduler:
                self.client = Client(self.settings.dask_scheduler)
            else:
                n_workers = self.settings.n_jobs if self.settings.n_jobs > 0 else (os.cpu_count() or 1)
                self._cluster = LocalCluster(
                    n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None
                )
                self.client = Client(self._cluster)
            self._config = joblib.parallel_config(backend="dask", n_jobs=-1)
        else:
            self._config = joblib.parallel_config(backend="loky", n_jobs=self.settings.n_jobs)
        return self

    def describe(self) -> str:
        if self.settings.backend == "loky":
            return f"joblib/loky, {self.settings.n_jobs} local processes"
        where = self.settings.dask_scheduler or "a local cluster"
        workers = len(self.client.scheduler_info().get("workers", {})) if self.client is not None else "?"
        return f"joblib/Dask on {where} ({workers} workers)"

    def close(self) -> None:
        if self._config is not None:
            self._config.__exit__(None, None, None)
            self._config = None
        if self.client is not None:
            self.client.close()
            self.client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def __enter__(self) -> GridExecutor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def task_seed(seed: int, *key: int) -> int:
    """A seed of its own for every task of a grid (``numpy.random.SeedSequence`` of the seed and the key)."""
    return int(np.random.SeedSequence([seed, *key]).generate_state(1)[0])
