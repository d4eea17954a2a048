"""The pipeline's stages: a run (settings and folders), and what each notebook computes.

``run = stages.start(run_name_or_path, overrides)`` begins every notebook (:mod:`.base`). A notebook
that has become a stage narrates ``r = stages.<name>.run(run)``: the stage module computes, saves the
outputs it declares (``STAGE``: :class:`~.base.Stage`) and returns a result to read. Stage modules
load on first use (``stages.figure1``), so that ``start`` stays light.

Every notebook is a stage (issue 21), in pipeline order in ``CONVERTED``. The figure index takes each
stage's outputs from its declaration, and the pipeline's staleness check (``depends_on``) which stages
read what another wrote.
"""

from __future__ import annotations

import importlib
from typing import Any

from .base import Folders, Output, Run, Stage, start

#: The notebooks that are stages, by module name under ``valuelex.stages``, in pipeline order.
CONVERTED = ("elicitation", "lexicon", "efa", "cfa", "semantic", "projective", "validation", "human_values", "figure1")

__all__ = ["CONVERTED", "Folders", "Output", "Run", "Stage", "declared", "depends_on", "start"]


def __getattr__(name: str) -> Any:
    if name in CONVERTED:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def declared() -> list[Stage]:
    """The declarations (``STAGE``) of the converted stages, in pipeline order."""
    return [importlib.import_module(f"{__name__}.{name}").STAGE for name in CONVERTED]


def depends_on() -> dict[str, tuple[str, ...]]:
    """Stage number -> the numbers of the stages that write a file it reads, from the declarations: a stage's
    outputs are stale when one of these ran after it (``valuelex run`` reruns it)."""
    writers: dict[str, str] = {}
    for stage in declared():
        for out in stage.outputs:
            if out.kind in ("data", "json"):
                writers[f"{out.name}.{'json' if out.kind == 'json' else 'csv'}"] = stage.number
    return {
        stage.number: tuple(sorted({writers[f] for f in stage.inputs if f in writers} - {stage.number}))
        for stage in declared()
    }
