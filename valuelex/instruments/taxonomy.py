"""The paper's taxonomy (``configs/taxonomy.yaml``): dimensions -> sub-dimensions -> marker words (with
variants). The one loader of the file: the CFA's taxonomy models (``valuelex.psychometrics.cfa``), the
semantic placement (``valuelex.semantic.load_taxonomy``, one row per example word) and the human value
frameworks read it through here.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from ..core import paths

TAXONOMY = paths.CONFIGS / "taxonomy.yaml"


def load_taxonomy(path: Path | None = None) -> dict:
    """``configs/taxonomy.yaml``: dimensions -> sub-dimensions -> marker words (with variants)."""
    return yaml.safe_load(Path(path or TAXONOMY).read_text(encoding="utf-8"))
