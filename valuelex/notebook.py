"""Small helpers for the notebooks: start a stage from the run file, and record its numbers for the tests.

Every notebook begins with ``settings = notebook.start(run, overrides)``: it loads the run file
(the notebook's one parameter), points the output folders at the run's, applies the figure
style and the display rules (three decimals, text left-aligned), and returns the run's settings.
``record(respondents=120, ...)`` keeps numbers in the executed notebook for the tests without
showing them twice; ``recorded(path)`` reads them back.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

MIME = "application/vnd.valuelex.metrics+json"
#: Decimals pandas shows in notebooks.
DISPLAY_PRECISION = 3


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def record(**numbers: Any) -> None:
    """Keep the numbers in the executed notebook for the tests and the manifest (not shown to readers)."""
    from IPython.display import display

    display({MIME: _plain(numbers)}, raw=True)


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


def frame_html(df: Any) -> str:
    """A DataFrame as HTML with numbers at ``DISPLAY_PRECISION`` decimals and text columns left-aligned."""
    import pandas as pd

    text = [c for c in df.columns if pd.api.types.is_object_dtype(df[c]) or pd.api.types.is_string_dtype(df[c])]
    styler = df.style.format(precision=DISPLAY_PRECISION, thousands=",", na_rep="")
    if text:
        styler = styler.set_properties(subset=text, **{"text-align": "left"})
    return styler.set_table_styles([{"selector": "th", "props": [("text-align", "left")]}]).to_html()


def _use_display_rules() -> None:
    import pandas as pd

    pd.set_option("display.precision", DISPLAY_PRECISION)
    pd.set_option("display.max_colwidth", 120)
    pd.set_option("display.width", 160)
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None:
        shell.display_formatter.formatters["text/html"].for_type(pd.DataFrame, frame_html)


def start(run: str | Path = "default", overrides: dict[str, Any] | None = None):
    """Load the run file, use its output folders, set figure style and display rules; the run's settings."""
    from . import figures, paths
    from .pipeline import Folders, tie_kernel
    from .settings import load_run

    tie_kernel()  # run by `valuelex run`: this kernel dies with papermill, even when that is SIGKILLed
    settings = load_run(run, overrides)
    folders = Folders.of(settings)
    for name, value in folders.environment().items():
        os.environ[name] = value
    paths.PROCESSED, paths.FIGURES, paths.BUILD, paths.RAW, paths.RAW_BASE = (
        folders.processed,
        folders.figures,
        folders.build,
        folders.raw,
        folders.base,
    )
    paths.LOGS = folders.build / "logs"
    figures.apply_style()
    _use_display_rules()
    return settings
