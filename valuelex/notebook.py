"""Small helpers for the notebooks: record the numbers a run produced, so tests can check them.

``record(respondents=120, lexicon_size=190)`` shows the numbers in the notebook and stores
them as a machine-readable output; ``recorded(path)`` reads them back from an executed copy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

MIME = "application/vnd.valuelex.metrics+json"


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def record(**numbers: Any) -> dict[str, Any]:
    """Display the numbers and keep them in the executed notebook for the tests."""
    from IPython.display import display

    data = _plain(numbers)
    text = "\n".join(f"{k}: {v}" for k, v in data.items())
    display({MIME: data, "text/plain": text}, raw=True)
    return data


def recorded(executed_notebook: str | Path) -> dict[str, Any]:
    """Every number recorded in an executed notebook (later records win)."""
    nb = json.loads(Path(executed_notebook).read_text(encoding="utf-8"))
    out: dict[str, Any] = {}
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if MIME in data:
                out.update(data[MIME])
    return out
