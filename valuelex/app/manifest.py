"""What a run leaves for readers besides the tutorial (:mod:`valuelex.app.tutorial`): the figure index
and the run manifest. Whether a run reproduced the committed tables is :mod:`valuelex.app.verify`.

``python -m valuelex.app.manifest figure-index`` (or ``manifest``) writes them for the committed run.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from ..core import paths


def notebook_title(path: Path) -> str:
    """The first markdown heading of a notebook, or its file name."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            for line in "".join(cell.get("source", "")).splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return Path(path).stem


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


def _store_summary(folder: Path, cards: Any) -> dict:
    """One study's response store as the manifest records it (nothing of it is read from elsewhere)."""
    from ..llm.store import ResponseStore

    store = ResponseStore(folder, announce=False)
    per_model = {}
    for model, c in sorted(store.usage_by_model().items()):
        card = cards.get(model)
        per_model[model] = {
            **{k: int(c[k]) for k in ("attempts", "final", "errors", "prompt_tokens", "completion_tokens")},
            "cost_usd": round(card.cost(c["prompt_tokens"], c["completion_tokens"]), 6) if card else None,
        }
    return {
        "folder": _shown(folder),
        "final_records": len(store),
        "attempt_records": store.stats.records,
        "load_issues": [str(i) for i in store.stats.issues],
        "duplicate_finals": store.stats.duplicate_finals,
        "per_model": per_model,
        "files": {p.name: _sha256(p) for p in store.shards()},
    }


def _shown(path: Path) -> str:
    """A path relative to the project when inside it (the manifest is read on other machines too)."""
    try:
        return str(Path(path).resolve().relative_to(paths.ROOT.resolve()))
    except ValueError:
        return str(path)


def describe_stores(raw: Path, base: Path | None, cards: Any = None) -> tuple[dict, dict]:
    """(where the run's answers are, what each study's store holds): the run's own store ``raw`` and,
    under it, the read-only ``base`` (the committed dataset for every run but the committed one)."""
    from ..llm.cards import load_model_cards
    from ..llm.runstore import open_store

    cards = cards if cards is not None else load_model_cards()
    raw, base = Path(raw), (Path(base) if base is not None else None)
    studies = sorted(
        {p.name for folder in (raw, base) if folder is not None and folder.is_dir() for p in folder.iterdir()
         if p.is_dir() and not p.name.startswith(".")}
    )  # fmt: skip
    stores = {}
    for study in studies:
        entry = _store_summary(raw / study, cards)
        if base is not None:
            entry["base"] = _store_summary(base / study, cards)
            entry["answers_available"] = len(open_store(raw / study, base / study))  # own and base together
        else:
            entry["base"] = None
            entry["answers_available"] = entry["final_records"]
        stores[study] = entry
    where = {
        "own": _shown(raw),
        "base": _shown(base) if base is not None else None,
        "note": "new answers are written to 'own'; 'base' is read only"
        if base is not None
        else "the run's store is the committed dataset",
    }
    return where, stores


def build_manifest(
    build_dir: Path,
    run: Any = None,
    overrides: dict | None = None,
    raw: Path | None = None,
    base: Path | None = None,
) -> dict:
    """Provenance of a run: code, environment, configs, data, every setting (``run``, a
    :class:`valuelex.settings.RunSettings`), numbers recorded, time per notebook.

    ``raw`` and ``base``: the run's own response store and its read-only base, as the notebooks
    used them (``valuelex run`` passes its folders); by default the run's (``Folders.of(run)``), or
    without a run the dataset (``data/raw``, no base).
    """
    from importlib import metadata

    from ..core.display import recorded

    versions = {}
    for name in KEY_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    if raw is None:
        if run is not None:
            from ..stages import Folders

            folders = Folders.of(run)
            raw, base = folders.raw, folders.base
        else:
            raw, base = paths.DATASET, None
    store_folders, stores = describe_stores(raw, base)
    notebooks = {}
    timings = {}
    timing_file = Path(build_dir) / "timings.tsv"
    if timing_file.exists():
        for line in timing_file.read_text().splitlines():
            name, _, secs = line.partition("\t")
            timings[name] = float(secs)
    for executed in sorted(Path(build_dir).glob("[0-9][0-9]_*.ipynb")):
        nb = json.loads(executed.read_text(encoding="utf-8"))
        notebooks[executed.stem] = {
            "seconds": timings.get(executed.stem),
            "recorded": recorded(executed),
            "passed_parameters": nb.get("metadata", {}).get("papermill", {}).get("parameters", {}),
        }
    configs = {str(p.relative_to(paths.ROOT)): _sha256(p) for p in sorted(paths.CONFIGS.rglob("*.yaml"))}
    return {
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "python": sys.version.split()[0],
        "packages": versions,
        "run_file": str(run.path) if run is not None else None,
        "committed_run": bool(getattr(run, "committed", False)),
        "overrides": overrides or {},
        "settings": json.loads(json.dumps(run.metrics(), default=str)) if run is not None else {},  # seeds included
        "configs_sha256": configs,
        "response_store": store_folders,
        "response_stores": stores,
        "notebooks": notebooks,
        "total_seconds": sum(timings.values()),
    }


def write_manifest(
    path: Path,
    build_dir: Path,
    run: Any = None,
    overrides: dict | None = None,
    raw: Path | None = None,
    base: Path | None = None,
) -> Path:
    """Write ``data/processed/run_manifest.json`` (the run's, under its output folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    manifest = build_manifest(Path(build_dir), run, overrides, raw, base)
    path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
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
    """Every figure and table in ``figures/``: notebook, kind, name, and what makes it (``made_by``).

    A notebook that is a stage (``stages.CONVERTED``) has its outputs from the stage's declaration;
    the others from their ``save_figure``/``save_table`` calls with a literal name, cell by cell.
    """
    from .. import stages

    declared = {f"{s.notebook}.ipynb": s for s in stages.declared()}
    found = []
    for nb_path in sorted(Path(notebooks_dir).glob("[0-9][0-9]_*.ipynb")):
        stage = declared.get(nb_path.name)
        if stage is not None:
            made_by = f"`valuelex/stages/{stage.name}.py` (notebook `{stage.notebook}`)"
            found += [
                {"notebook": nb_path.name, "kind": out.kind, "name": out.name, "made_by": made_by}
                for out in stage.outputs
                if out.kind in ("figure", "table")
            ]
            continue
        nb = json.loads(nb_path.read_text(encoding="utf-8"))
        code_cells = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
        for number, cell in enumerate(code_cells, start=1):
            for kind, name in _save_calls("".join(cell.get("source", ""))):
                made_by = f"`notebooks/{nb_path.name}`, code cell {number}"
                found.append({"notebook": nb_path.name, "cell": number, "kind": kind, "name": name, "made_by": made_by})
    return found


def write_figure_index(figures_dir: Path, descriptions: Path = paths.CONFIGS / "figure_index.yaml") -> Path:
    """``figures/INDEX.md``: each artefact, the notebook and code cell that makes it, and what it reproduces."""
    import yaml

    figures_dir = Path(figures_dir)
    about = yaml.safe_load(Path(descriptions).read_text(encoding="utf-8")) if Path(descriptions).exists() else {}
    rows = [
        "# Figures and tables",
        "",
        "Every artefact in this folder, the notebook and code cell that writes it, and the part of the",
        "paper (arXiv 2404.12744) it corresponds to. Figures come as PNG and PDF, tables as CSV and",
        "Markdown. Regenerate everything with `./run_all.sh`; this index with",
        "`python -m valuelex.app.manifest figure-index`.",
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
            f"| `{a['name']}` | {files or '(not generated yet)'} | {a['made_by']} "
            f"| {info.get('paper', 'ours')} | {info.get('what', '')} |"
        )
    index = figures_dir / "INDEX.md"
    figures_dir.mkdir(parents=True, exist_ok=True)
    index.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return index


def main(argv: list[str]) -> int:
    """``manifest`` | ``figure-index``, for the committed run (whose folders a test may move)."""
    from ..settings import load_run
    from ..stages import Folders

    folders = Folders.of(load_run())
    if argv == ["figure-index"]:
        print(write_figure_index(folders.figures))
        return 0
    if argv == ["manifest"]:
        print(
            write_manifest(folders.processed / "run_manifest.json", folders.build, raw=folders.raw, base=folders.base)
        )
        return 0
    print("usage: python -m valuelex.app.manifest manifest | figure-index", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
