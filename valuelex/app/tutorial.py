"""The HTML tutorial: executed notebooks rendered for reading, with a landing page and a glossary.

Each notebook page gets a navigation bar (previous, contents, next), a table of contents built
from its headings, and hides bookkeeping cells (cells tagged ``bookkeeping``: saving files,
recording numbers for the tests) and the code of cells tagged ``hide-input``. The landing page
gives the reading order with a one-line summary per notebook (``metadata.valuelex.summary`` of
each notebook) and links to the README, the figure index and the glossary (``docs/glossary.md``).
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..core import paths

#: Cells with this tag are left out of the HTML (they save files or record numbers for the tests).
BOOKKEEPING_TAG = "bookkeeping"
#: Cells with this tag show their output only.
HIDE_INPUT_TAG = "hide-input"
NAV_STYLE = (
    "nav.vl{display:flex;justify-content:space-between;gap:1em;padding:.6em 0;border-bottom:1px solid #ccc;"
    "margin-bottom:1em;font-family:system-ui,sans-serif}"
    "nav.vl.bottom{border-top:1px solid #ccc;border-bottom:none;margin-top:2em}"
    "div.vl-toc{background:#f6f8fa;border:1px solid #ddd;padding:.5em 1em;margin:1em 0;font-family:system-ui,sans-serif}"
    # a table or text wider than the page scrolls inside its output, instead of being cut at the right edge
    "div.jp-OutputArea-output{overflow-x:auto;max-width:100%}"
    "td.vl-more{font-style:italic;color:#555;text-align:left}"
)
STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:52em;margin:2em auto;padding:0 1em;line-height:1.55}"
    + NAV_STYLE
    + "table{border-collapse:collapse}td,th{padding:.2em .6em;border-bottom:1px solid #ddd;text-align:left}"
    "dt{font-weight:bold;margin-top:.8em}"
)


@dataclass(frozen=True)
class Page:
    """One notebook of the tutorial."""

    stem: str
    title: str
    summary: str

    @property
    def file(self) -> str:
        return f"{self.stem}.html"


def notebook_info(path: Path) -> Page:
    """Title (first heading) and one-line summary (``metadata.valuelex.summary``) of a notebook."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    title = Path(path).stem
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            heading = next((ln for ln in "".join(cell.get("source", "")).splitlines() if ln.startswith("#")), None)
            if heading:
                title = heading.lstrip("#").strip()
                break
    summary = nb.get("metadata", {}).get("valuelex", {}).get("summary", "")
    return Page(Path(path).stem, title, summary)


def pages(notebooks_dir: Path | None = None) -> list[Page]:
    """The tutorial's pages in reading order (the pipeline order)."""
    return [notebook_info(p) for p in sorted(Path(notebooks_dir or paths.NOTEBOOKS).glob("[0-9][0-9]_*.ipynb"))]


def _nav(pages_: list[Page], i: int, where: str) -> str:
    prev = f'<a href="{pages_[i - 1].file}">&larr; {html.escape(pages_[i - 1].title)}</a>' if i > 0 else "<span></span>"
    nxt = (
        f'<a href="{pages_[i + 1].file}">{html.escape(pages_[i + 1].title)} &rarr;</a>'
        if i + 1 < len(pages_)
        else '<a href="index.html">Back to the contents</a>'
    )
    middle = '<span><a href="index.html">Contents</a> &middot; <a href="glossary.html">Glossary</a></span>'
    return f'<nav class="vl {where}">{prev}{middle}{nxt}</nav>'


_HEADING = re.compile(r'<h([23])[^>]*id="([^"]+)"[^>]*>(.*?)</h\1>', re.S)


def table_of_contents(page_html: str) -> str:
    """A list of the page's level-2 and level-3 headings, linked to their anchors."""
    items = []
    for level, anchor, inner in _HEADING.findall(page_html):
        text = html.escape(re.sub(r"<[^>]+>", "", inner).replace("¶", "").strip())
        indent = ' style="margin-left:1.5em"' if level == "3" else ""
        items.append(f'<li{indent}><a href="#{anchor}">{text}</a></li>')
    if not items:
        return ""
    return '<div class="vl-toc"><b>On this page</b><ul>' + "".join(items) + "</ul></div>"


def render_notebook(executed: Path, out_dir: Path, pages_: list[Page], figures_dir: Path | None = None) -> Path:
    """Render one executed notebook to HTML with navigation and contents; bookkeeping cells hidden."""
    import nbformat
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    from ..core.display import MIME as RECORD_MIME

    nb = nbformat.read(str(executed), as_version=4)
    for cell in nb.cells:  # the numbers record() keeps for the tests are for machines, not readers
        cell["outputs"] = [o for o in cell.get("outputs", []) if set(o.get("data", {})) != {RECORD_MIME}]
        saved = _SAVED_TABLE.findall(cell.get("source", "")) if cell.get("cell_type") == "code" else []
        for output in cell["outputs"]:
            if "text/html" in output.get("data", {}):
                html_text = output["data"]["text/html"]
                html_text = "".join(html_text) if isinstance(html_text, list) else html_text
                output["data"]["text/html"] = shorten_tables(html_text, _full_table_link(saved, out_dir, figures_dir))
    remover = TagRemovePreprocessor(
        remove_cell_tags={BOOKKEEPING_TAG, "injected-parameters"}, remove_input_tags={HIDE_INPUT_TAG}, enabled=True
    )
    exporter = HTMLExporter()
    exporter.register_preprocessor(remover, enabled=True)
    body, _ = exporter.from_notebook_node(nb)
    i = next(i for i, p in enumerate(pages_) if p.stem == Path(executed).stem)
    top = f"<style>{NAV_STYLE}</style>" + _nav(pages_, i, "top") + table_of_contents(body)
    body = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + top, body, count=1)
    body = body.replace("</body>", _nav(pages_, i, "bottom") + "</body>", 1)
    out = Path(out_dir) / pages_[i].file
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(body, encoding="utf-8")
    return out


#: A table shown with more rows than this is shortened to its first ``SHOWN_ROWS`` rows in the HTML.
MAX_ROWS = 30
SHOWN_ROWS = 15
_TABLE = re.compile(r"<table\b.*?</table>", re.S)
_ROW = re.compile(r"<tr\b")
_CELL = re.compile(r"<t[dh]\b")
_SAVED_TABLE = re.compile(r"save_table\(.*?[\"']([\w.-]+)[\"']\s*(?:,[^()]*)?\)", re.S)


def _full_table_link(saved: list[str], out_dir: Path, figures_dir: Path | None) -> str:
    """Where a shortened table is in full: the CSV its cell saved, else the index of every table."""
    import os

    if not saved:
        return 'every table is saved in full: see the <a href="figures.html">figures and tables</a>'
    folder = Path(figures_dir or paths.COMMITTED_FIGURES)
    link = os.path.relpath(folder.resolve() / f"{saved[0]}.csv", Path(out_dir).resolve())
    return f'the full table: <a href="{html.escape(link)}">{html.escape(saved[0])}.csv</a>'


def shorten_tables(page: str, link: str, limit: int = MAX_ROWS, shown: int = SHOWN_ROWS) -> str:
    """Every table of ``page`` with more than ``limit`` body rows cut to its first ``shown``, with a last
    row that says how many are left out and links to the full table."""

    def shorten(match: re.Match) -> str:
        table = match.group(0)
        body = table.find("<tbody")
        start = body if body >= 0 else 0
        rows = [m.start() for m in _ROW.finditer(table, start)]
        if len(rows) <= limit:
            return table
        end = table.rfind("</tbody>") if body >= 0 else table.rfind("</table>")
        columns = len(_CELL.findall(table[rows[0] : rows[1]]))
        note = (
            f'<tr><td class="vl-more" colspan="{columns}">&hellip; {len(rows) - shown} more rows not shown; '
            f"{link}</td></tr>"
        )
        return table[: rows[shown]] + note + table[end:]

    return _TABLE.sub(shorten, page)


# The tutorial's hygiene, checked on the page as Chromium renders it ----------------------------
_OUTPUT = re.compile(r'<div class="[^"]*jp-OutputArea-output[^"]*"[^>]*>(.*?)</div>', re.S)
_TAG = re.compile(r"<[^>]+>")
_HYGIENE = (
    ("a raw dict", re.compile(r"\{'[^'\n]{1,60}': ")),
    ("a raw repr", re.compile(r"\b(?:PosixPath|WindowsPath)\(|<[\w.]+ object at 0x|\b[A-Z]\w+\(\w+=[^)]")),
    ("a raw pandas Series", re.compile(r"\bdtype: \w+")),
    ("an absolute path", re.compile(r"(?<![\w.~])/(?:work|tmp|root|home|usr|opt|var|Users)/")),
    ("an integer printed as a decimal", re.compile(r"\b\d{1,3}(?:,\d{3})+\.0+\b")),
    ("a seed with thousands separators", re.compile(r"\bseed[\s:=]+\d{1,3}(?:,\d{3})+\b", re.I)),
)


def check_page(dom: str) -> list[str]:
    """What a student should not see on a rendered notebook page (its DOM): raw dicts and reprs, warning
    or progress-bar blocks, absolute paths, integers as decimals, tables too long to read, tables that
    cannot scroll, and no link to the glossary. Empty when the page is clean."""
    problems = []
    blocks = dom.count('data-mime-type="application/vnd.jupyter.stderr"')  # an output block, not the CSS rule
    if blocks:
        problems.append(f"{blocks} warning or progress-bar block(s) (stderr output)")
    text = "\n".join(html.unescape(_TAG.sub(" ", o)) for o in _OUTPUT.findall(dom))
    for what, pattern in _HYGIENE:
        found = pattern.search(text)
        if found:
            around = text[max(0, found.start() - 40) : found.end() + 40].replace("\n", " ")
            problems.append(f"{what}: ...{around.strip()}...")
    for table in _TABLE.findall(dom):
        rows = len(_ROW.findall(table))
        if rows > MAX_ROWS + 2 and "vl-more" not in table:  # a header row and the 'more rows' row
            problems.append(f"a table of {rows} rows, not shortened")
    if "jp-OutputArea-output{overflow-x:auto" not in dom.replace(" ", ""):
        problems.append("wide outputs cannot scroll (no overflow-x rule)")
    if 'href="glossary.html"' not in dom:
        problems.append("no link to the glossary")
    return problems


CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)  # fmt: skip


def chromium() -> str | None:
    """The Chromium executable, if one is installed."""
    import shutil

    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


def rendered_dom(page: Path, browser: str, profile: Path) -> str:
    """The page's DOM after Chromium has loaded it (``--dump-dom``)."""
    import subprocess

    return subprocess.run(
        [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", Path(page).resolve().as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip


def check_tutorial(html_dir: Path, browser: str, profile: Path) -> dict[str, list[str]]:
    """:func:`check_page` on every notebook page of a rendered tutorial, as Chromium renders it."""
    return {p.file: check_page(rendered_dom(Path(html_dir) / p.file, browser, profile))
            for p in pages() if (Path(html_dir) / p.file).exists()}  # fmt: skip


_RELATIVE_LINK = re.compile(r'(href|src)="(?![a-z]+:|#|/)([^"]+)"')


def markdown_page(source: Path, out: Path, title: str) -> Path:
    """A Markdown document (glossary, README, figure index) as a standalone HTML page; its relative
    links are rewritten to point where they pointed from the document's own folder."""
    import os

    import mistune

    render = mistune.create_markdown(plugins=["table", "def_list", "strikethrough"])
    text = Path(source).read_text(encoding="utf-8") if Path(source).exists() else f"*{source.name} not found*"
    base = os.path.relpath(Path(source).resolve().parent, Path(out).resolve().parent)
    body = _RELATIVE_LINK.sub(lambda m: f'{m.group(1)}="{base}/{m.group(2)}"', render(text))
    out.write_text(
        f"<!doctype html>\n<html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head>\n<body>"
        f'<nav class="vl top"><a href="index.html">Contents</a></nav>\n{body}\n</body></html>\n',
        encoding="utf-8",
    )
    return out


def landing_page(out_dir: Path, pages_: list[Page], seconds: dict[str, float] | None = None) -> Path:
    """``index.html``: what the tutorial is, the reading order with summaries, and where to look next."""
    seconds = seconds or {}
    rows = "\n".join(
        f'<tr><td>{n}</td><td><a href="{p.file}">{html.escape(p.title)}</a></td><td>{html.escape(p.summary)}</td>'
        f"<td>{'' if p.stem not in seconds else f'{seconds[p.stem]:.0f} s'}</td></tr>"
        for n, p in enumerate(pages_, start=1)
        if (Path(out_dir) / p.file).exists()
    )
    index = Path(out_dir) / "index.html"
    index.write_text(
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8><title>ValueLex reproduction: the tutorial</title>"
        f"<style>{STYLE}</style></head>\n<body>\n"
        "<h1>ValueLex, reproduced: the tutorial</h1>\n"
        "<p>These pages are the executed notebooks of a run, in reading order. Together they rebuild the "
        "ValueLex method (Biedma et al., arXiv 2404.12744): ask language models for the words of their values, "
        "clean the words into a lexicon, find its dimensions by factor analysis and semantic clustering, and "
        "score models on them with sentence-completion tests. Each notebook reads only what the earlier ones "
        "wrote; each ends with what it showed and what to try next.</p>\n"
        '<p>New to language models, or to psychometrics? Keep the <a href="glossary.html">glossary</a> open. '
        'What is and is not reproduced: the <a href="README.html">README</a>. Every figure and table, and the '
        'notebook cell that makes it: the <a href="figures.html">figure index</a>.</p>\n'
        "<h2>Reading order</h2>\n<table><tr><th>#</th><th>notebook</th><th>what it does</th><th>run time</th></tr>\n"
        f"{rows}\n</table>\n</body></html>\n",
        encoding="utf-8",
    )
    return index


def build(
    executed_dir: Path, out_dir: Path, seconds: dict[str, float] | None = None, figures_dir: Path | None = None
) -> Path:
    """Render every executed notebook found in ``executed_dir`` plus the landing page, glossary,
    README and figure index (``figures_dir/INDEX.md``, default the committed one) into ``out_dir``;
    returns the landing page."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    all_pages = [p for p in pages() if (Path(executed_dir) / f"{p.stem}.ipynb").exists()]
    for page in all_pages:
        render_notebook(Path(executed_dir) / f"{page.stem}.ipynb", out_dir, all_pages, figures_dir)
    markdown_page(paths.ROOT / "docs" / "glossary.md", out_dir / "glossary.html", "Glossary")
    markdown_page(paths.ROOT / "README.md", out_dir / "README.html", "README")
    markdown_page(
        Path(figures_dir or paths.COMMITTED_FIGURES) / "INDEX.md", out_dir / "figures.html", "Figures and tables"
    )
    return landing_page(out_dir, all_pages, seconds)
