"""The simulation grids on joblib's Dask backend (``simulation.GridExecutor``, setting ``simulation.backend``)."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from valuelex.core.errors import ConfigError
from valuelex.methods import simulation
from valuelex.methods.simulation import SimulationSettings
from valuelex.psychometrics.efa.settings import EFASettings
from valuelex.settings import load_run

EFA = EFASettings(parallel_iter=3)
GRID = SimulationSettings(model_counts=(4, 8), per_model=(15,), model_grid_replications=2, seed=5, n_jobs=2)


def where_am_i(_: int) -> tuple[int, str]:
    from distributed import get_worker

    return os.getpid(), get_worker().address


def test_grid_on_a_two_worker_dask_cluster_equals_the_grid_on_loky():
    s = simulation.planted_structure(n_words=40, seed=3)
    with simulation.GridExecutor(SimulationSettings(n_jobs=2, backend="loky")) as loky:
        assert loky.describe() == "joblib/loky, 2 local processes"
        on_loky = simulation.model_count_grid(s, EFA, GRID, progress=False).grid
    with simulation.GridExecutor(SimulationSettings(n_jobs=2, backend="dask")) as dask:
        assert dask.describe() == "joblib/Dask on a local cluster (2 workers)"
        workers = set(dask.client.scheduler_info()["workers"])
        ran = simulation.run_tasks(where_am_i, [(i,) for i in range(8)], progress=False)
        on_dask = simulation.model_count_grid(s, EFA, GRID, progress=False).grid
    assert {address for _, address in ran} <= workers  # the tasks ran on the cluster's workers ...
    assert os.getpid() not in {pid for pid, _ in ran}  # ... in other processes
    pd.testing.assert_frame_equal(on_loky, on_dask)
    assert len(on_dask) == 2 * 1 * 2 * 2 and (on_dask["error"] == "").all()
    assert dask.client is None  # closed with its cluster


def test_backend_setting_is_checked(tmp_path):
    run = tmp_path / "r.yaml"
    run.write_text("simulation:\n  backend: ray\n")
    with pytest.raises(ConfigError, match=r"simulation\.backend must be 'loky' or 'dask', got 'ray'"):
        load_run(run)
    settings = load_run(run, {"simulation.backend": "dask", "simulation.dask_scheduler": "tcp://127.0.0.1:8786"})
    assert (settings.simulation.backend, settings.simulation.dask_scheduler) == ("dask", "tcp://127.0.0.1:8786")
