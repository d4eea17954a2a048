"""The pipeline's stages: a run (settings and folders), and what each notebook computes.

``run = stages.start(run_name_or_path, overrides)`` begins every notebook (:mod:`.base`). A notebook
that has become a stage narrates ``r = stages.<name>.run(run)``: the stage module computes, saves the
outputs it declares (``STAGE``: :class:`~.base.Stage`) and returns a result to read. Stage modules
load on first use (``stages.figure1``), so that ``start`` stays light.

Converted so far (issue 21): notebooks 02 (:mod:`.lexicon`), 05 (:mod:`.semantic`) and 09 (:mod:`.figure1`). The figure index takes a converted
stage's outputs from its declaration; the other notebooks' from their ``save_*`` calls.
"""

from __future__ import annotations

import importlib
from typing import Any

from .base import Folders, Output, Run, Stage, start

#: The notebooks that are stages, by module name under ``valuelex.stages``, in pipeline order.
CONVERTED = ("elicitation", "lexicon", "efa", "cfa", "semantic", "projective", "validation", "human_values", "figure1")

__all__ = ["CONVERTED", "Folders", "Output", "Run", "Stage", "declared", "start"]


def __getattr__(name: str) -> Any:
    if name in CONVERTED:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def declared() -> list[Stage]:
    """The declarations (``STAGE``) of the converted stages, in pipeline order."""
    return [importlib.import_module(f"{__name__}.{name}").STAGE for name in CONVERTED]
