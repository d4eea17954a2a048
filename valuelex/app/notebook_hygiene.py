"""Source notebooks are stored clean: no outputs, no execution counts, a tagged parameters cell.

``python -m valuelex.app.notebook_hygiene notebooks`` checks; ``--strip`` cleans in place.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def problems(path: Path) -> list[str]:
    """What is wrong with one source notebook (empty if nothing)."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    out = []
    code = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    for i, cell in enumerate(code):
        if cell.get("outputs"):
            out.append(f"{path}: code cell {i} has outputs")
        if cell.get("execution_count") is not None:
            out.append(f"{path}: code cell {i} has an execution count")
    if not code or "parameters" not in code[0].get("metadata", {}).get("tags", []):
        out.append(f"{path}: the first code cell must be tagged 'parameters'")
    return out


def strip(path: Path) -> None:
    """Remove outputs and execution counts in place."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    Path(path).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: list[str]) -> int:
    do_strip = "--strip" in argv
    folders = [a for a in argv if not a.startswith("--")] or ["notebooks"]
    notebooks = sorted(p for f in folders for p in Path(f).glob("*.ipynb"))
    if not notebooks:
        print(f"no notebooks found in {', '.join(folders)}", file=sys.stderr)
        return 1
    found = []
    for nb in notebooks:
        if do_strip:
            strip(nb)
        found += problems(nb)
    for line in found:
        print(line, file=sys.stderr)
    print(f"{len(notebooks)} notebooks checked, {len(found)} problems")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
