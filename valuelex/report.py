"""What a run leaves for readers: the HTML tutorial index (and, later, the run manifest).

``python -m valuelex.report html-index build/html`` writes ``index.html`` linking every
rendered notebook under its title, with the time each took (from ``build/timings.tsv``).
"""

from __future__ import annotations

import html
import json
import re
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


def write_html_index(
    html_dir: Path, notebooks_dir: Path = paths.NOTEBOOKS, timings: Path = paths.BUILD / "timings.tsv"
) -> Path:
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


# run manifest ----------------------------------------------------------------------------
KEY_PACKAGES = (
    "numpy", "pandas", "scipy", "scikit-learn", "factor_analyzer", "semopy", "sentence-transformers",
    "torch", "openai", "matplotlib", "seaborn", "papermill", "llama_cpp_python",
)  # fmt: skip


def _git(*args: str) -> str:
    import subprocess

    try:
        return subprocess.run(["git", *args], cwd=paths.ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def build_manifest(build_dir: Path = paths.BUILD, parameters: list[str] | None = None) -> dict:
    """Provenance of a run: code, environment, configs, data, numbers recorded, time per notebook."""
    from importlib import metadata

    from .config import load_model_cards
    from .notebook import recorded
    from .store import ResponseStore

    versions = {}
    for name in KEY_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    cards = load_model_cards()
    stores = {}
    for folder in sorted(p for p in paths.RAW.glob("*") if p.is_dir()):
        store = ResponseStore(folder)
        per_model = {}
        for model, c in sorted(store.usage_by_model().items()):
            card = cards.get(model)
            per_model[model] = {
                **{k: int(c[k]) for k in ("attempts", "final", "errors", "prompt_tokens", "completion_tokens")},
                "cost_usd": round(card.cost(c["prompt_tokens"], c["completion_tokens"]), 6) if card else None,
            }
        stores[folder.name] = {
            "final_records": len(store),
            "attempt_records": store.stats.records,
            "load_issues": [str(i) for i in store.stats.issues],
            "duplicate_finals": store.stats.duplicate_finals,
            "per_model": per_model,
            "files": {p.name: _sha256(p) for p in sorted(folder.glob("*.jsonl"))},
        }
    notebooks = {}
    timings = {}
    timing_file = Path(build_dir) / "timings.tsv"
    if timing_file.exists():
        for line in timing_file.read_text().splitlines():
            name, _, secs = line.partition("\t")
            timings[name] = float(secs)
    for executed in sorted(Path(build_dir).glob("[0-9][0-9]_*.ipynb")):
        nb = json.loads(executed.read_text(encoding="utf-8"))
        defaults = next(
            (
                "".join(c.get("source", ""))
                for c in nb.get("cells", [])
                if "parameters" in c.get("metadata", {}).get("tags", [])
            ),
            "",
        )
        notebooks[executed.stem] = {
            "seconds": timings.get(executed.stem),
            "recorded": recorded(executed),
            "default_parameters": defaults,  # the parameters cell as written (seeds included)
            "passed_parameters": nb.get("metadata", {}).get("papermill", {}).get("parameters", {}),
        }
    configs = {str(p.relative_to(paths.ROOT)): _sha256(p) for p in sorted(paths.CONFIGS.rglob("*.yaml"))}
    return {
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "python": sys.version.split()[0],
        "packages": versions,
        "run_all_arguments": parameters or [],
        "configs_sha256": configs,
        "response_stores": stores,
        "notebooks": notebooks,
        "total_seconds": sum(timings.values()),
    }


def write_manifest(path: Path | None = None, parameters: list[str] | None = None) -> Path:
    """Write ``data/processed/run_manifest.json``."""
    path = Path(path or paths.PROCESSED / "run_manifest.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(build_manifest(parameters=parameters), indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    return path


# figure index --------------------------------------------------------------------------------
_SAVE_CALL = re.compile(r"save_(figure|table)\((?:[^()]|\([^()]*\))*?[\"']([A-Za-z0-9_\-]+)[\"']")


def _save_calls(source: str) -> list[tuple[str, str]]:
    """(kind, name) of each ``save_figure``/``save_table`` call whose second argument is a literal name.

    Read from the syntax tree, so arguments nested to any depth are no obstacle; a cell that is
    not plain Python (an IPython magic) falls back to a regular expression.
    """
    import ast

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return _SAVE_CALL.findall(source)
    calls = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        if func in ("save_figure", "save_table") and len(node.args) >= 2:
            name = node.args[1]
            if isinstance(name, ast.Constant) and isinstance(name.value, str):
                calls.append((node.lineno, node.col_offset, func.removeprefix("save_"), name.value))
    return [(kind, name) for _, _, kind, name in sorted(calls)]


def artefacts_by_notebook(notebooks_dir: Path = paths.NOTEBOOKS) -> list[dict]:
    """Every ``save_figure``/``save_table`` call with a literal name: notebook, cell number, kind, name."""
    found = []
    for nb_path in sorted(Path(notebooks_dir).glob("[0-9][0-9]_*.ipynb")):
        nb = json.loads(nb_path.read_text(encoding="utf-8"))
        code_cells = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
        for number, cell in enumerate(code_cells, start=1):
            for kind, name in _save_calls("".join(cell.get("source", ""))):
                found.append({"notebook": nb_path.name, "cell": number, "kind": kind, "name": name})
    return found


def write_figure_index(
    figures_dir: Path | None = None, descriptions: Path = paths.CONFIGS / "figure_index.yaml"
) -> Path:
    """``figures/INDEX.md``: each artefact, the notebook and code cell that makes it, and what it reproduces."""
    import yaml

    figures_dir = Path(figures_dir or paths.FIGURES)
    about = yaml.safe_load(Path(descriptions).read_text(encoding="utf-8")) if Path(descriptions).exists() else {}
    rows = [
        "# Figures and tables",
        "",
        "Every artefact in this folder, the notebook and code cell that writes it, and the part of the",
        "paper (arXiv 2404.12744) it corresponds to. Figures come as PNG and PDF, tables as CSV and",
        "Markdown. Regenerate everything with `./run_all.sh`; this index with",
        "`python -m valuelex.report figure-index`.",
        "",
        "| artefact | files | made by | paper | what it shows |",
        "|---|---|---|---|---|",
    ]
    merged: dict[str, dict] = {}
    for a in artefacts_by_notebook():
        entry = merged.setdefault(a["name"], {**a, "kinds": set()})
        entry["kinds"].add(a["kind"])
    for a in merged.values():
        exts = [
            e
            for kind, pair in (("figure", ("png", "pdf")), ("table", ("csv", "md")))
            if kind in a["kinds"]
            for e in pair
        ]
        files = " ".join(f"[{e}]({a['name']}.{e})" for e in exts if (figures_dir / f"{a['name']}.{e}").exists())
        info = about.get(a["name"], {})
        rows.append(
            f"| `{a['name']}` | {files or '(not generated yet)'} | `notebooks/{a['notebook']}`, code cell {a['cell']} "
            f"| {info.get('paper', 'ours')} | {info.get('what', '')} |"
        )
    index = figures_dir / "INDEX.md"
    figures_dir.mkdir(parents=True, exist_ok=True)
    index.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return index


def main(argv: list[str]) -> int:
    """``html-index DIR`` | ``manifest [RUN_ALL_ARGUMENTS...]`` | ``figure-index``."""
    if len(argv) == 2 and argv[0] == "html-index":
        print(write_html_index(Path(argv[1])))
        return 0
    if argv == ["figure-index"]:
        print(write_figure_index())
        return 0
    if argv and argv[0] == "manifest":
        print(write_manifest(parameters=argv[1:]))
        return 0
    print("usage: python -m valuelex.report html-index DIR | manifest [ARGS...] | figure-index", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
