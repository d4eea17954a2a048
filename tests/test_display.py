"""Reports format numbers as a reader expects them."""

from __future__ import annotations

import pandas as pd

from valuelex.core.display import Report, format_number, format_p


class _Example(Report):
    title = "Example"

    def sections(self):
        table = pd.DataFrame({"word": ["care", "truth"], "F1": [0.51234, float("nan")], "p": [0.00001, 0.2]})
        return [("Fit", {"chi2": 85.3061, "df": 24, "p": 0.04}), ("Loadings", table)]


def test_numbers_and_p_values():
    assert format_number(1234) == "1,234"
    assert format_number(0.123456) == "0.123"
    assert format_number(0.0000123) == "1.23e-05"
    assert format_number(float("nan")) == "NA"
    assert format_number(True) == "yes"
    assert format_p(0.0004) == "< .001"
    assert format_p(0.0412) == "0.041"


def test_report_text_and_html():
    text = str(_Example())
    assert "chi2  85.306" in text and "df    24" in text and "p     0.040" in text
    assert "0.512" in text and "< .001" in text and "0.51234" not in text
    html = _Example()._repr_html_()
    assert "<h4>Example</h4>" in html and "text-align: left" in html and "85.306" in html


def test_a_table_shows_no_row_numbers_and_aligns_text_left():
    """Before: `valuelex plan`'s table printed pandas' row numbers 0, 1, 2 in front, and text columns were
    right-aligned (under pandas 3 a text column's dtype is `str`, not `object`, so it was not seen as text)."""
    lines = str(_Example()).split("\n")
    table = lines[lines.index("Loadings") + 2 :]
    assert table == [  # text left, numbers right, each header aligned like its cells
        "word      F1       p",
        "care   0.512  < .001",
        "truth          0.200",
    ]
    named = pd.DataFrame({"loading": [0.5, 0.25]}, index=["honesty", "care"])  # an index that names rows stays
    assert "honesty    0.500" in Report.__str__(type("R", (Report,), {"sections": lambda self: [("", named)]})())
    html = _Example()._repr_html_()
    assert "row_heading" not in html  # no row-number column
    assert html.count("text-align: left") >= 2  # the th rule and the text column `word`


def test_facts_print_as_a_report_and_are_a_dict() -> None:
    """Before: a result's summary() was a plain dict, and a notebook showed `{'units': 120, ...}`; counts carried
    as floats printed as `6,437.000` and a seed as `20,240,419`."""
    import pickle

    from valuelex.core.display import Facts

    facts = Facts("Words prepared", {"units": 120, "dof": 6437.0, "seed": 20240419, "kmo": 0.81234, "needed": None})
    assert str(facts).splitlines() == [
        "Words prepared",
        "==============",
        "units   120",
        "dof     6,437",
        "seed    20240419",
        "kmo     0.812",
        "needed  none",
    ]
    assert repr(facts) == str(facts) and "{" not in facts._repr_html_()
    assert facts == {"units": 120, "dof": 6437.0, "seed": 20240419, "kmo": 0.81234, "needed": None}
    assert {**facts}["units"] == 120 and facts.metrics()["dof"] == 6437.0
    again = pickle.loads(pickle.dumps(facts))  # joblib workers send results back by pickle
    assert type(again) is Facts and again == facts and again.title == "Words prepared"


def test_every_report_shows_its_report_as_its_repr():
    """Issue 21: a dataclass report without ``repr=False`` shows the dataclass in a console and in a
    notebook's plain-text output (IPython prefers a class's own ``__repr__``); every report in the
    package keeps Report's."""
    import dataclasses
    import importlib
    import pkgutil

    import valuelex
    from valuelex.core.display import Report

    for info in pkgutil.walk_packages(valuelex.__path__, "valuelex."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    found = [cls for cls in subclasses(Report) if cls.__module__.startswith("valuelex.")]
    assert len(found) > 20
    wrong = [
        f"{c.__module__}.{c.__qualname__}" for c in found if dataclasses.is_dataclass(c) and "__repr__" in c.__dict__
    ]
    assert not wrong, f"say @dataclass(repr=False): {wrong}"
