"""The simulation's settings (run-file section ``simulation``) and the paper's scale."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from ...core.schema import Count, Icc, Length, Range, Seed

#: The paper's scale: 190+ unique words, 525 respondents, three dimensions.
PAPER_WORDS = 190
PAPER_RESPONDENTS = 525
PAPER_FACTORS = 3


Loading = Annotated[float, Range(0, 1, low_open=True, high_open=True)]


@dataclass(frozen=True)
class SimulationSettings:
    """Notebook 07: method validation on planted structures (run-file section ``simulation``).

    Defined here, next to the studies that consume it; ``valuelex.settings`` composes it into a run's
    settings (``RunSettings.simulation``) and checks each field against its type (:mod:`valuelex.core.schema`).
    """

    n_words: Annotated[int, Range(6)] = 190  # the paper's "190+ unique words" [paper] (>= 2 per planted factor)
    n_respondents: Annotated[int, Range(10)] = 525  # the paper's 525 respondents [paper]
    conditions: dict[str, tuple[Loading, Loading]] = field(
        default_factory=lambda: {"strong": (0.45, 0.8), "moderate": (0.3, 0.6)}
    )  # planted loading ranges (low, high); "strong" is the one analysed first
    zipf_exponent: Annotated[float, Range(0)] = 0.6
    sizes: Annotated[tuple[Annotated[int, Range(10)], ...], Length(1)] = (
        60,
        120,
        250,
        525,
    )  # respondents for the recovery curve (the finer run adds 1000)
    replications: Count = 6  # simulated panels per size and condition (the finer run: 20)
    parallel_iter: Count = 20
    n_jobs: Count | Literal[-1] = (
        2  # processes, or Dask workers of a local cluster; -1: all (results do not depend on it)
    )
    backend: Literal["loky", "dask"] = "loky"  # joblib's backend for the grids: local processes, or dask.distributed
    dask_scheduler: str | None = None  # backend dask: the scheduler's address (tcp://host:8786); null: a local cluster
    word_sizes: Annotated[tuple[Annotated[int, Range(10)], ...], Length(1)] = (
        120,
        525,
    )  # respondents for the word-selection comparison
    model_counts: Annotated[tuple[Annotated[int, Range(2)], ...], Length(1)] = (
        4,
        8,
        16,
        32,
        64,
    )  # part 2: models per simulated panel
    per_model: Annotated[tuple[Annotated[int, Range(2)], ...], Length(1)] = (
        5,
        17,
        30,
        100,
    )  # part 2: respondents (decoding settings) per model
    model_grid_replications: Count = 1  # part 2: simulated panels per cell (the finer run: 10)
    model_grid_parallel_iter: Count = 6  # part 2: null data sets per parallel analysis (the finer run: 20)
    # Share of each word's latent propensity variance that is the model's vocabulary (each model over- or
    # under-uses each word whatever it means). Our choice: the local panel's four small models measure
    # about 0.4 (``multilevel.latent_icc``, notebook 03); larger models may be less idiosyncratic.
    vocabulary_icc: Icc = 0.2
    # Share of the value factors' variance that lies between models (models differing in their values).
    # 0: every value difference is between respondents of the same model (our choice; see notebook 07).
    value_icc: Icc = 0.0
    choice_replications: Count = 1  # panels per shape when choosing the within-model correlation (finer: 10)
    tie_shapes: Annotated[tuple[tuple[Count, Count], ...], Length(1)] = (
        (4, 30),
        (33, 16),
    )  # (models, respondents per model) where efa.parallel_ties is chosen: ours, and the paper's 33 x 16
    tie_replications: Count = 20  # simulated panels per shape for the tie rule (the finer run: 40)
    seed: Seed = 20240419

    def invalid(self) -> list[tuple[tuple[str, ...], str]]:
        out = []
        if "strong" not in self.conditions:
            out.append((("conditions",), "simulation.conditions must include 'strong' (the condition analysed first)"))
        for name, (low, high) in self.conditions.items():
            if low > high:
                out.append(
                    (("conditions",), f"simulation.conditions.{name} must be (low, high), got ({low:g}, {high:g})")
                )
        return out
