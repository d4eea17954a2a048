"""How results show themselves: a formatted report in a notebook or console, plain numbers for tests.

A stage's result subclasses :class:`Report` and says what it has to show in ``sections()``; the
notebook then only writes the result's name in a cell. ``metrics()`` gives the same numbers as
plain Python values for the tests and the run manifest. Formatting is defined here once:
three decimals for statistics, p-values as psych and lavaan readers expect, whole numbers with
thousands separators, text left-aligned.

A notebook keeps numbers for the tests and the run manifest with ``record(respondents=120, ...)``
(not shown to readers); ``recorded(path)`` reads them back from the executed notebook, and
``recorded_here()`` gives those this kernel has recorded so far (the closing findings of a notebook
are written from them, ``valuelex.findings``).
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: Decimals shown for statistics (loadings, fit indices, correlations) in reports and notebook tables.
DECIMALS = 3
#: The output type under which ``record`` keeps numbers in an executed notebook.
MIME = "application/vnd.valuelex.metrics+json"


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


#: Every number recorded in this kernel so far (later records win), for the notebook's closing findings.
_RECORDED: dict[str, Any] = {}


def record(**numbers: Any) -> None:
    """Keep the numbers in the executed notebook for the tests and the manifest (not shown to readers)."""
    from IPython.display import display

    plain = _plain(numbers)
    _RECORDED.update(plain)
    display({MIME: plain}, raw=True)


def recorded_here() -> dict[str, Any]:
    """The numbers ``record`` has kept in this kernel so far (later records win): what the findings read.

    As ``recorded`` reads them back from the executed notebook (its JSON has sorted keys), so that the
    findings shown are the ones the stored numbers give."""
    return json.loads(json.dumps(_RECORDED, sort_keys=True))


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
    """A DataFrame as HTML with numbers at ``DECIMALS`` decimals and text columns left-aligned."""
    text = [c for c in df.columns if pd.api.types.is_object_dtype(df[c]) or pd.api.types.is_string_dtype(df[c])]
    styler = df.style.format(precision=DECIMALS, thousands=",", na_rep="")
    if text:
        styler = styler.set_properties(subset=text, **{"text-align": "left"})
    return styler.set_table_styles([{"selector": "th", "props": [("text-align", "left")]}]).to_html()


def use_display_rules() -> None:
    """Pandas shows three decimals, long text and wide frames; in IPython, frames render through ``frame_html``."""
    pd.set_option("display.precision", DECIMALS)
    pd.set_option("display.max_colwidth", 120)
    pd.set_option("display.width", 160)
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None:
        shell.display_formatter.formatters["text/html"].for_type(pd.DataFrame, frame_html)


def format_number(value: Any, decimals: int = DECIMALS) -> str:
    """A number as a reader expects it: integers with separators, floats with ``decimals`` decimals."""
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return "NA"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if value != 0 and abs(value) < 10 ** (-decimals):
            return f"{value:.{decimals - 1}e}"
        return f"{value:,.{decimals}f}"
    return str(value)


def format_p(p: float) -> str:
    """A p-value: ``< .001`` below one in a thousand, otherwise three decimals."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "NA"
    return "< .001" if p < 0.001 else f"{p:.3f}"


def format_frame(
    df: pd.DataFrame, decimals: int = DECIMALS, p_columns: tuple[str, ...] = ("p", "p_value")
) -> pd.DataFrame:
    """A copy of ``df`` with every cell formatted as text (numbers by :func:`format_number`, p-values by
    :func:`format_p`); missing values shown as blanks."""
    out = pd.DataFrame(index=df.index)
    for column in df.columns:
        values = df[column]
        if str(column) in p_columns:
            out[column] = [format_p(v) if pd.notna(v) else "" for v in values]
        else:
            out[column] = [format_number(v, decimals) if not _missing(v) else "" for v in values]
    return out


#: Names of counts: a float value under one of these names that is whole prints as an integer
#: (``dof 7,017``, not ``7,017.000``; an estimator may carry a count as a float).
COUNT_NAMES = frozenset({"df", "dof", "df_null", "dof_null", "bartlett_df", "n", "k", "iterations", "units", "words"})


def _is_count(name: str) -> bool:
    return name in COUNT_NAMES or name.startswith(("n_", "words_", "dropped_")) or name.endswith(("_n", "_count"))


def _format_named(name: Any, value: Any, decimals: int) -> str:
    """A named number: p-values as p-values, a seed as written (no separators), whole counts as integers."""
    name = str(name)
    if value is None:
        return "none"
    if name in ("p", "p_value", "p-value") or name.endswith("_p"):
        return format_p(value)
    whole = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    whole = whole and math.isfinite(value) and float(value).is_integer()
    if whole and "seed" in name:
        return str(int(value))
    if whole and _is_count(name):
        return format_number(int(value), decimals)
    return format_number(value, decimals)


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _is_text(series: pd.Series) -> bool:
    """A column of text (pandas 3's ``str`` dtype, or objects that are not all numbers)."""
    if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        return False
    return not all(isinstance(v, (int, float, np.number)) for v in series.dropna())


def _row_numbers(df: pd.DataFrame) -> bool:
    """Whether a table's index is only row numbers 0, 1, 2, ... (not shown: it names nothing)."""
    index = df.index
    return isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1 and index.name is None


def _frame_text(content: pd.DataFrame, decimals: int) -> str:
    """A table as text: numbers right-aligned, text columns left-aligned, row numbers left out."""
    frame = format_frame(content, decimals)
    columns: list[tuple[list[str], bool]] = []  # (header and cells, left-aligned)
    if not _row_numbers(content):
        columns.append((["", *(str(i) for i in content.index)], True))
    for column in frame.columns:
        columns.append(([str(column), *frame[column]], _is_text(content[column])))
    widths = [max(len(cell) for cell in cells) for cells, _ in columns]
    rows = []
    for i in range(len(frame) + 1):
        cells = [c[i].ljust(w) if left else c[i].rjust(w) for (c, left), w in zip(columns, widths, strict=True)]
        rows.append("  ".join(cells).rstrip())
    return "\n".join(rows)


def _content_text(content: Any, decimals: int) -> str:
    if isinstance(content, pd.DataFrame):
        return _frame_text(content, decimals)
    if isinstance(content, Mapping):
        width = max((len(str(k)) for k in content), default=0)
        return "\n".join(f"{str(k):<{width}}  {_format_named(k, v, decimals)}" for k, v in content.items())
    return str(content)


def _content_html(content: Any, decimals: int) -> str:
    if isinstance(content, pd.DataFrame):
        text = [str(c) for c in content.columns if _is_text(content[c])]
        styler = format_frame(content, decimals).style
        styler = styler.set_properties(subset=text, **{"text-align": "left"}) if text else styler
        styler = styler.hide(axis="index") if _row_numbers(content) else styler
        return styler.set_table_styles([{"selector": "th", "props": [("text-align", "left")]}]).to_html()
    if isinstance(content, Mapping):
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(str(k))}</th>"
            f"<td style='text-align:right'>{html.escape(_format_named(k, v, decimals))}</td></tr>"
            for k, v in content.items()
        )
        return f"<table>{rows}</table>"
    return f"<p>{html.escape(str(content))}</p>"


class Report:
    """A result that displays itself as a formatted report.

    Subclasses set ``title`` and implement ``sections()``, a list of ``(heading, content)`` where
    content is a DataFrame, a mapping of named numbers, or text; they may override ``metrics()``.
    A subclass that is a dataclass must say ``@dataclass(repr=False)``: otherwise the dataclass'
    own ``__repr__`` is what a notebook shows as plain text.
    """

    title: str = "Result"
    decimals: int = DECIMALS

    def sections(self) -> list[tuple[str, Any]]:
        raise NotImplementedError

    def metrics(self) -> dict[str, Any]:
        """Plain numbers for the tests and the run manifest (no formatting)."""
        return {}

    def __str__(self) -> str:
        parts = [self.title, "=" * len(self.title)]
        for heading, content in self.sections():
            if heading:
                parts += ["", heading, "-" * len(heading)]
            parts.append(_content_text(content, self.decimals))
        return "\n".join(parts)

    def _repr_html_(self) -> str:
        parts = [f"<h4>{html.escape(self.title)}</h4>"]
        for heading, content in self.sections():
            if heading:
                parts.append(f"<p><b>{html.escape(heading)}</b></p>")
            parts.append(_content_html(content, self.decimals))
        return "\n".join(parts)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))

    def __repr__(self) -> str:  # a console (and a debugger) shows the report too
        return str(self)


class Facts(Report, dict):
    """Named numbers that print as a report (aligned, three decimals, counts as integers, p-values as
    p-values) and are a plain ``dict`` for code: what a result's ``summary()`` returns."""

    def __init__(self, title: str, values: Mapping[str, Any] | None = None, **more: Any) -> None:
        dict.__init__(self, values or {}, **more)
        self.title = title

    def sections(self) -> list[tuple[str, Any]]:
        return [("", dict(self))]

    def metrics(self) -> dict[str, Any]:
        return _plain(dict(self))

    def __reduce__(self):  # joblib workers send results back by pickle
        return (Facts, (self.title, dict(self)))
