"""The HTML tutorial's hygiene rules (valuelex.app.tutorial): each rule finds its case, and a clean page passes.

The whole tutorial of a default run is checked in Chromium by tests/test_cpu_emulation.py's whole run, and
the pages of notebooks 01 and 02 by tests/test_report.py."""

from __future__ import annotations

import pytest

from valuelex.app import tutorial

STYLE = "<style>div.jp-OutputArea-output{overflow-x:auto;max-width:100%}</style>"
NAV = '<nav><a href="index.html">Contents</a> <a href="glossary.html">Glossary</a></nav>'


def page(output: str, mime: str = "text/plain") -> str:
    return (
        f'<html><head>{STYLE}</head><body>{NAV}<div class="jp-OutputArea-child">'
        f'<div class="jp-RenderedText jp-OutputArea-output" data-mime-type="{mime}"><pre>{output}</pre></div>'
        "</div></body></html>"
    )


def test_a_clean_page_passes() -> None:
    assert tutorial.check_page(page("units     120\ndof       6,437\nseed      20240419\nchi2  16,013.724")) == []


@pytest.mark.parametrize(
    ("output", "problem"),
    [
        ("{'units': 120, 'words_in': 137}", "a raw dict"),
        ("[PosixPath('figures/x.png')]", "a raw repr"),
        ("RunReport(errors=Counter(), per_model={})", "a raw repr"),
        ("&lt;valuelex.efa.Prepared object at 0x7f00&gt;", "a raw repr"),
        ("reason\nrare    19\nName: words, dtype: int64", "a raw pandas Series"),
        ("saved to /work/main/figures/x.png", "an absolute path"),
        ("/tmp/pytest-of-root/x.csv", "an absolute path"),
        ("dof       7,017.000", "an integer printed as a decimal"),
        ("seed      20,240,419", "a seed with thousands separators"),
    ],
)
def test_each_rule_finds_its_case(output: str, problem: str) -> None:
    found = tutorial.check_page(page(output))
    assert len(found) == 1 and found[0].startswith(problem), found


def test_warnings_long_tables_no_scroll_and_no_glossary_are_found() -> None:
    stderr = page("FutureWarning: ...", mime="application/vnd.jupyter.stderr")
    assert tutorial.check_page(stderr) == ["1 warning or progress-bar block(s) (stderr output)"]
    rows = "".join(f"<tr><td>w{i}</td><td>0.5</td></tr>" for i in range(40))
    long = page("x").replace(
        "</body>", f"<table><thead><tr><th>word</th></tr></thead><tbody>{rows}</tbody></table></body>"
    )
    assert tutorial.check_page(long) == ["a table of 41 rows, not shortened"]
    short = tutorial.shorten_tables(long, 'the full table: <a href="t.csv">t.csv</a>')
    assert tutorial.check_page(short) == []
    assert page("x").replace(STYLE, "") != page("x")
    assert tutorial.check_page(page("x").replace(STYLE, "")) == ["wide outputs cannot scroll (no overflow-x rule)"]
    assert tutorial.check_page(page("x").replace(NAV, "")) == ["no link to the glossary"]


def test_a_long_table_keeps_its_first_rows_and_links_to_the_full_table() -> None:
    rows = "".join(f"<tr><th>w{i}</th><td>{i}</td></tr>" for i in range(40))
    table = f"<table><thead><tr><th></th><th>F1</th></tr></thead><tbody>{rows}</tbody></table>"
    short = tutorial.shorten_tables(
        table, 'the full table: <a href="../../figures/efa_loadings.csv">efa_loadings.csv</a>'
    )
    assert short.count("<tr") == 1 + tutorial.SHOWN_ROWS + 1  # header, the first rows, the note
    assert "w14<" in short and "w15<" not in short
    assert "25 more rows not shown" in short and 'colspan="2"' in short and "efa_loadings.csv" in short
    assert short.endswith("</tbody></table>")
    small = "<table><tr><td>1</td></tr><tr><td>2</td></tr></table>"
    assert tutorial.shorten_tables(small, "x") == small  # a short table is left as it is


def test_a_cell_links_its_long_table_to_the_csv_it_saved(tmp_path) -> None:
    source = 'result = efa.fit_efa(corr, k, settings.efa)\nrun.save_table(efa.loadings_table(result), "efa_loadings")\nresult'
    assert tutorial._SAVED_TABLE.findall(source) == ["efa_loadings"]
    link = tutorial._full_table_link(["efa_loadings"], tmp_path / "build" / "html", tmp_path / "figures")
    assert 'href="../../figures/efa_loadings.csv"' in link
    assert 'href="figures.html"' in tutorial._full_table_link([], tmp_path, None)  # a table no cell saved
