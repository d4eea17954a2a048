"""The project's static paths, in one place (a run's own folders are not here: see ``valuelex.stages.Run``).

Data flows one way: ``configs`` + ``data/raw`` -> ``data/processed`` -> ``figures``.

The project folder (the one holding ``configs/``, ``data/`` and ``notebooks/``) is found from
the environment (``VALUELEX_PROJECT``), else from the working directory or any folder above it,
else from the package's own location (a development checkout); never only from the package, so
that an installed ``valuelex`` works on the project folder it is run in.
``VALUELEX_MODELS_DIR`` keeps the local GGUF files somewhere else than ``.models/``;
``VALUELEX_WHEEL_CACHE`` the downloaded model wheels.

The ``COMMITTED_*`` folders are where the committed run (``configs/runs/default.yaml``) writes, and
what ``valuelex verify`` compares with; every other run writes into folders of its own, which
``valuelex.stages.Folders`` chooses (the one place that reads ``VALUELEX_PROCESSED`` and the like).
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
    checkout = Path(__file__).resolve().parent.parent.parent
    return checkout if (checkout / PROJECT_MARKER).is_dir() else Path.cwd().resolve()


ROOT = _root()

CONFIGS = ROOT / "configs"
MODEL_CARDS = CONFIGS / "models"
PANELS = CONFIGS / "panels"
PROMPTS = CONFIGS / "prompts"
INSTRUMENTS = CONFIGS / "instruments"
NOTEBOOKS = ROOT / "notebooks"

DATA = ROOT / "data"
#: The dataset: the committed raw responses (the committed run's store, every other run's read-only base).
DATASET = DATA / "raw"
#: Where the committed run writes (and what ``valuelex verify`` compares with).
COMMITTED_PROCESSED = DATA / "processed"
COMMITTED_FIGURES = ROOT / "figures"
COMMITTED_BUILD = ROOT / "build"

#: Local GGUF model files (never in git; installed by ``./run_all.sh --install-local-models``).
MODELS_DIR = Path(os.environ.get("VALUELEX_MODELS_DIR", ROOT / ".models"))
#: Downloaded model wheels, kept so a re-install does not download again.
WHEEL_CACHE = Path(os.environ.get("VALUELEX_WHEEL_CACHE", Path.home() / ".cache" / "valuelex" / "wheels"))


def is_project(folder: Path = ROOT) -> bool:
    """Whether ``folder`` holds a ValueLex project (``configs/panels/``)."""
    return (folder / PROJECT_MARKER).is_dir()
