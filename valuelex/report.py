"""What a run leaves for readers: the HTML tutorial index (and, later, the run manifest).

``python -m valuelex.report html-index build/html`` writes ``index.html`` linking every
rendered notebook under its title, with the time each took (from ``build/timings.tsv``).
"""

from __future__ import annotations

import html
import json
import sys
from pathlib import Path

from . import paths


def notebook_title(path: Path) -> str:
    """The first markdown heading of a notebook, or its file name."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            for line in "".join(cell.get("source", "")).splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return Path(path).stem


def write_html_index(html_dir: Path, notebooks_dir: Path = paths.NOTEBOOKS, timings: Path = paths.BUILD / "timings.tsv") -> Path:
    """index.html linking the rendered notebooks in order."""
    html_dir = Path(html_dir)
    seconds = {}
    if Path(timings).exists():
        for line in Path(timings).read_text().splitlines():
            name, _, secs = line.partition("\t")
            seconds[name] = secs
    items = []
    for nb in sorted(Path(notebooks_dir).glob("[0-9][0-9]_*.ipynb")):
        page = html_dir / f"{nb.stem}.html"
        if not page.exists():
            continue
        took = f" <small>({seconds[nb.stem]} s)</small>" if nb.stem in seconds else ""
        items.append(f'<li><a href="{page.name}">{html.escape(notebook_title(nb))}</a>{took}</li>')
    body = "\n".join(items) or "<li>No rendered notebooks yet: run ./run_all.sh</li>"
    index = html_dir / "index.html"
    index.write_text(
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8><title>ValueLex reproduction</title>"
        "<style>body{font-family:sans-serif;max-width:48em;margin:2em auto;line-height:1.5}</style></head>\n"
        "<body><h1>ValueLex reproduction: the notebooks</h1>\n"
        "<p>Executed copies of the notebooks, in pipeline order. Each reads only what earlier ones wrote.</p>\n"
        f"<ol>\n{body}\n</ol></body></html>\n",
        encoding="utf-8",
    )
    return index


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "html-index":
        print(write_html_index(Path(argv[1])))
        return 0
    print("usage: python -m valuelex.report html-index DIR", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
