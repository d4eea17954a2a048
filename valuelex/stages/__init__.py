"""The pipeline's stages: a run (settings and folders), and what each notebook reads and writes.

``run = stages.start(run_name_or_path, overrides)`` begins every notebook (:mod:`.base`);
:mod:`.catalog` declares each notebook's inputs and outputs, from which ``valuelex run`` takes the
stage order, the staleness of outputs and ``figures/INDEX.md``.
"""

from .base import Folders, Run, start

__all__ = ["Folders", "Run", "start"]
