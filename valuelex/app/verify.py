"""Did this run reproduce the committed tables? ``valuelex verify`` (or ``python -m valuelex.app.verify``)
compares every regenerated table with the committed one (git's ``HEAD``) under the tolerances of
:mod:`valuelex.core.precision`; see :func:`verify`.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..core import paths
from ..core.display import Report
from ..core.precision import Precision, precision_of

#: Folders whose committed files ``verify`` checks (relative to the repository root).
VERIFIED_FOLDERS = ("figures", "data/processed")
#: Differences listed per file before the rest are counted.
MAX_LISTED_PER_FILE = 10


class VerifyError(Exception):
    """verify cannot run (no git, or nothing committed to compare with)."""


@dataclass(frozen=True)
class Difference:
    """One real difference between a committed table and the regenerated one."""

    file: str
    row: str
    column: str
    committed: str
    now: str
    note: str = ""

    def __str__(self) -> str:
        where = ", ".join(part for part in (self.row, f"column {self.column}" if self.column else "") if part)
        note = f" ({self.note})" if self.note else ""
        return f"{self.file}: {where}: {self.committed or '(empty)'} -> {self.now or '(empty)'}{note}"


def _parses(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_integer_literal(text: str) -> bool:
    return text.lstrip("-").isdigit()


def _key_columns(committed: pd.DataFrame, now: pd.DataFrame) -> list[str]:
    """The shortest run of leading columns (text or whole numbers, at most 3) that names each row uniquely in both."""
    keys: list[str] = []
    for column in list(committed.columns)[:3]:
        if column not in now.columns:
            break
        values = [v for v in committed[column] if v != ""]
        if values and all(_parses(v) and not _is_integer_literal(v) for v in values):
            break  # a float column is a measurement, not a name
        keys.append(column)
        if not committed.duplicated(keys).any() and not now.duplicated(keys).any():
            return keys
    return []


def _row_names(frame: pd.DataFrame, keys: list[str]) -> list[str]:
    return [
        ", ".join(f"{k}={v}" for k, v in zip(keys, row, strict=True)) for row in frame[keys].itertuples(index=False)
    ]


def _cell_differs(committed: str, now: str, precision: Precision) -> str | None:
    """Why two cells differ for real (a note), or None when they are equal or within tolerance."""
    if committed == now:
        return None
    if not (_parses(committed) and _parses(now)):
        return ""
    if _is_integer_literal(committed) and _is_integer_literal(now):
        return "whole numbers must match"
    a, b = float(committed), float(now)
    if a == b:
        return None
    limit = precision.tolerance(a, b)
    if abs(a - b) <= limit * (1 + 1e-9):  # the slack absorbs the binary error of decimal differences
        return None
    return f"difference {abs(a - b):.3g} > tolerance {limit:.3g}"


def compare_tables(committed_text: str, now_text: str, file: str) -> list[Difference]:
    """Real differences between two versions of one CSV table.

    Rows are matched by their leading name columns when these are unique (e.g. ``word``), else by
    position; float columns are compared within their quantity's tolerance
    (:func:`valuelex.core.precision.precision_of`, looked up by the file's stem and the column), whole
    numbers, booleans and text exactly. Missing or added rows and columns and a changed row order
    are differences.
    """
    if committed_text == now_text:
        return []
    table = Path(file).stem
    read = dict(dtype=str, keep_default_na=False, na_filter=False)
    committed = pd.read_csv(io.StringIO(committed_text), **read) if committed_text.strip() else pd.DataFrame()
    now = pd.read_csv(io.StringIO(now_text), **read) if now_text.strip() else pd.DataFrame()
    found: list[Difference] = []
    gone = [c for c in committed.columns if c not in now.columns]
    new = [c for c in now.columns if c not in committed.columns]
    if gone or new:
        found.append(
            Difference(file, "header", "", ", ".join(gone) or "-", ", ".join(new) or "-", "columns missing -> added")
        )
    columns = [c for c in committed.columns if c in now.columns]
    keys = _key_columns(committed, now)
    if keys:
        committed.index, now.index = _row_names(committed, keys), _row_names(now, keys)
        old_names, new_names = set(committed.index), set(now.index)
        found += [
            Difference(file, f"row ({k})", "", "present", "missing") for k in committed.index if k not in new_names
        ]
        found += [Difference(file, f"row ({k})", "", "missing", "present") for k in now.index if k not in old_names]
        common = [k for k in committed.index if k in new_names]
        if common != [k for k in now.index if k in old_names]:
            found.append(Difference(file, "row order", "", "committed order", "another order", "same rows, reordered"))
        rows = [f"row ({k})" for k in common]
        old_cells, new_cells = committed.loc[common, columns].to_numpy(), now.loc[common, columns].to_numpy()
    else:
        if len(committed) != len(now):
            found.append(Difference(file, "rows", "", str(len(committed)), str(len(now)), "row count"))
        shared = min(len(committed), len(now))
        rows = [f"row {i + 1}" for i in range(shared)]
        old_cells, new_cells = committed[columns].iloc[:shared].to_numpy(), now[columns].iloc[:shared].to_numpy()
    precisions = [precision_of(table, c) for c in columns]
    for r, c in zip(*np.nonzero(old_cells != new_cells), strict=True):  # cells whose text differs
        note = _cell_differs(old_cells[r, c], new_cells[r, c], precisions[c])
        if note is not None:
            found.append(Difference(file, rows[r], columns[c], old_cells[r, c], new_cells[r, c], note))
    return found


def _compare_json(committed_text: str, now_text: str, file: str) -> list[Difference]:
    """JSON data files (settings) must hold the same values."""
    old, new = json.loads(committed_text), json.loads(now_text)
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            Difference(file, f"key {k}", "", json.dumps(old.get(k)), json.dumps(new.get(k)))
            for k in sorted(set(old) | set(new))
            if old.get(k) != new.get(k)
        ]
    return [Difference(file, "content", "", "committed", "changed")]


def _png_change(committed: bytes, now: bytes) -> float:
    """Share of pixels that differ between two PNGs (1.0 when their sizes differ)."""
    from PIL import Image

    a = np.asarray(Image.open(io.BytesIO(committed)).convert("RGBA"), dtype=np.int16)
    b = np.asarray(Image.open(io.BytesIO(now)).convert("RGBA"), dtype=np.int16)
    if a.shape != b.shape:
        return 1.0
    return float((np.abs(a - b).max(axis=2) > 0).mean())


def committed_files(root: Path, ref: str = "HEAD", folders: tuple[str, ...] = VERIFIED_FOLDERS) -> dict[str, bytes]:
    """Every file git holds at ``ref`` under ``folders``: path relative to ``root`` -> bytes."""

    try:
        listed = subprocess.run(
            ["git", "-C", str(root), "ls-tree", "-r", "--name-only", ref, "--", *folders],
            capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
    except (OSError, subprocess.CalledProcessError) as error:
        raise VerifyError(
            f"cannot list the committed files at {ref} in {root} (is it a git clone?): {error}"
        ) from error
    if not listed:
        return {}
    batch = subprocess.run(
        ["git", "-C", str(root), "cat-file", "--batch"],
        input="".join(f"{ref}:{name}\n" for name in listed).encode(), capture_output=True, check=True,
    ).stdout  # fmt: skip
    files, at = {}, 0
    for name in listed:
        end = batch.index(b"\n", at)
        size = int(batch[at:end].split()[2])
        files[name] = batch[end + 1 : end + 1 + size]
        at = end + 1 + size + 1
    return files


@dataclass(repr=False)
class VerifyResult(Report):
    """What ``verify`` found: tables within tolerance or not, figures regenerated or not, and every real difference."""

    ref: str
    tables: dict[str, list[Difference]]  # committed table -> its real differences
    identical_tables: list[str]
    missing: list[str]  # committed tables or figures that the run did not regenerate
    figures: dict[
        str, float | None
    ]  # committed figure -> None if byte-identical, else share of pixels changed (PNG; nan for PDF)
    markdown_identical: tuple[int, int]
    new: list[str]  # regenerated tables or figures that git does not hold
    title: str = "Reproduction check against the committed outputs"

    @property
    def passed(self) -> bool:
        return not self.missing and all(not d for d in self.tables.values())

    def metrics(self) -> dict:
        return {
            "tables": len(self.tables),
            "tables_within_tolerance": sum(not d for d in self.tables.values()),
            "tables_identical": len(self.identical_tables),
            "differences": sum(len(d) for d in self.tables.values()),
            "missing": len(self.missing),
            "figures": len(self.figures),
            "figures_identical": sum(v is None for v in self.figures.values()),
            "passed": self.passed,
        }

    def summary_lines(self) -> list[str]:
        m = self.metrics()
        within = m["tables_within_tolerance"]
        lines = [
            f"reproduced: {within} of {m['tables']} tables within tolerance "
            f"({m['tables_identical']} byte-identical to {self.ref}, {within - m['tables_identical']} within the "
            "tolerances of valuelex/core/precision.py)"
        ]
        changed = {k: v for k, v in self.figures.items() if v is not None}
        pngs = [v for v in changed.values() if not np.isnan(v)]
        lines.append(
            f"figures: {m['figures'] - sum(f in self.missing for f in self.figures)} of {m['figures']} regenerated, "
            f"{m['figures_identical']} byte-identical"
            + (
                f", {len(changed)} differ in bytes (PNG: at most {max(pngs):.2%} of pixels changed)"
                if pngs
                else f", {len(changed)} differ in bytes"
                if changed
                else ""
            )
            + ": figures are drawn from the tables checked here and are not compared across machines; "
            "a missing figure fails"
        )
        lines.append(
            f"markdown: {self.markdown_identical[0]} of {self.markdown_identical[1]} .md files byte-identical "
            "(twins of the CSVs, which are what is compared)"
        )
        noisy = [name for name, found in self.tables.items() if not found and name not in self.identical_tables]
        if noisy:
            lines.append(f"tables within tolerance but not byte-identical: {', '.join(noisy)}")
        if changed:
            lines.append(f"figures that differ in bytes: {', '.join(changed)}")
        if self.new:
            lines.append(f"not in {self.ref} (new, not compared): {', '.join(self.new)}")
        return lines

    def difference_lines(self) -> list[str]:
        lines = [f"missing: {name} (committed, not regenerated)" for name in self.missing]
        for name, found in self.tables.items():
            lines += [f"  {d}" for d in found[:MAX_LISTED_PER_FILE]]
            if len(found) > MAX_LISTED_PER_FILE:
                lines.append(f"  {name}: ... and {len(found) - MAX_LISTED_PER_FILE} more differences")
        return lines

    @property
    def byte_identical(self) -> bool:
        """Every table, Markdown twin and figure compared has the committed bytes."""
        return (
            len(self.identical_tables) == len(self.tables)
            and self.markdown_identical[0] == self.markdown_identical[1]
            and all(v is None for v in self.figures.values())
        )

    def verdict(self) -> str:
        """The last line: reproduced or not, and in words what differed when something did."""
        if not self.passed:
            return "verdict: NOT reproduced: the differences above exceed the tolerances"
        noisy = sum(not found and name not in self.identical_tables for name, found in self.tables.items())
        markdown = self.markdown_identical[1] - self.markdown_identical[0]
        drawings = {k: v for k, v in self.figures.items() if v is not None}
        if self.byte_identical:
            return (
                "verdict: reproduced; every table and figure is byte-identical to the committed one (git status clean)"
            )
        pngs = [v for v in drawings.values() if not np.isnan(v)]
        drawn = (
            f"{len(drawings)} of {len(self.figures)} drawings (PNG/PDF) differ in bytes"
            + (f" (PNG: at most {max(pngs):.2%} of pixels changed)" if pngs else "")
            + ", drawn from the tables checked here"
        )
        if not noisy and not markdown:
            return f"verdict: reproduced; every table is byte-identical to the committed one; only drawings differ: {drawn}"
        parts = []
        if noisy:
            parts.append(
                f"{noisy} of {len(self.tables)} tables differ in the last digits, within valuelex/core/precision.py"
            )
        parts += [f"{markdown} Markdown twins of tables differ"] if markdown else []
        parts += [drawn] if drawings else []
        return f"verdict: reproduced within tolerance; nothing differs beyond floating-point noise: {'; '.join(parts)}"

    def text(self) -> str:
        """What the command prints: the summary, each real difference, and the verdict (the last line)."""
        lines = self.summary_lines()
        if not self.passed:
            lines.append("real differences (file: row, column: committed -> now):")
            lines += self.difference_lines()
        elif not self.byte_identical:
            lines.append(
                "(where the committed folders were regenerated, `git checkout -- figures data/processed` restores their bytes)"
            )
        lines.append(self.verdict())
        return "\n".join(lines)

    def sections(self) -> list[tuple[str, object]]:
        rows = [
            {"file": d.file, "row": d.row, "column": d.column, "committed": d.committed, "now": d.now, "note": d.note}
            for found in self.tables.values()
            for d in found
        ]
        return [
            ("", "\n".join(self.summary_lines())),
            ("Real differences", pd.DataFrame(rows) if rows else "none"),
        ]


def verify(
    ref: str = "HEAD",
    root: Path = paths.ROOT,
    figures_dir: Path | None = None,
    processed_dir: Path | None = None,
    names: list[str] | None = None,
) -> VerifyResult:
    """Compare the regenerated outputs with the files git holds at ``ref``.

    Every CSV (and JSON) table committed under ``figures/`` and ``data/processed/`` is read from
    git and compared with the file of the same name in ``figures_dir`` / ``processed_dir``
    (by default the committed run's: ``figures/`` and ``data/processed/``) by :func:`compare_tables`.
    Figures (PNG, PDF) must exist; their bytes are reported, not judged: on another machine the
    same numbers can be drawn with sub-pixel differences. ``names`` (paths relative to ``root``,
    e.g. ``data/processed/semantic_clusters.csv``) checks only those files, for a part of a run.
    """
    figures_dir = Path(figures_dir or paths.COMMITTED_FIGURES)
    processed_dir = Path(processed_dir or paths.COMMITTED_PROCESSED)
    homes = {"figures": figures_dir, "data/processed": processed_dir}
    committed = committed_files(Path(root), ref)
    if names is not None:
        unknown = sorted(set(names) - set(committed))
        if unknown:
            raise VerifyError(f"not committed at {ref} in {root}: {', '.join(unknown)}")
        committed = {name: data for name, data in committed.items() if name in names}
    if not any(name.endswith(".csv") for name in committed):
        raise VerifyError(f"no committed tables under {', '.join(VERIFIED_FOLDERS)} at {ref} in {root}")

    def regenerated(name: str) -> Path:
        folder = next(f for f in VERIFIED_FOLDERS if name.startswith(f + "/"))
        return homes[folder] / name[len(folder) + 1 :]

    tables: dict[str, list[Difference]] = {}
    identical, missing, md_same, md_total = [], [], 0, 0
    figures: dict[str, float | None] = {}
    for name, old in sorted(committed.items()):
        suffix = Path(name).suffix
        path = regenerated(name)
        if suffix in (".csv", ".json", ".png", ".pdf") and not path.exists():
            missing.append(name)
            if suffix in (".csv", ".json"):
                tables[name] = [Difference(name, "file", "", "committed", "missing")]
            else:
                figures[name] = float("nan")
            continue
        if suffix in (".csv", ".json"):
            now = path.read_bytes()
            if now == old:
                tables[name] = []
                identical.append(name)
            elif suffix == ".csv":
                tables[name] = compare_tables(old.decode("utf-8"), now.decode("utf-8"), name)
            else:
                tables[name] = _compare_json(old.decode("utf-8"), now.decode("utf-8"), name)
        elif suffix in (".png", ".pdf"):
            now = path.read_bytes()
            figures[name] = None if now == old else (_png_change(old, now) if suffix == ".png" else float("nan"))
        elif suffix == ".md" and path.exists():
            md_total += 1
            md_same += path.read_bytes() == old
    known = {regenerated(name).resolve() for name in committed}
    new = (
        []
        if names is not None
        else sorted(
            str(p.relative_to(folder.parent)) if folder.parent in p.parents else str(p)
            for folder in homes.values()
            if folder.exists()
            for p in folder.glob("*")
            if p.suffix in (".csv", ".png", ".pdf") and p.resolve() not in known
        )
    )
    return VerifyResult(ref, tables, identical, missing, figures, (md_same, md_total), new)


def main(argv: list[str]) -> int:
    """``[--ref REF]``: verify the committed run (whose folders a test may move) against ``REF`` (default HEAD)."""
    from ..settings import load_run
    from ..stages import Folders

    folders = Folders.of(load_run())
    if argv and not (len(argv) == 2 and argv[0] == "--ref"):
        print("usage: python -m valuelex.app.verify [--ref REF]", file=sys.stderr)
        return 2
    ref = argv[1] if argv else "HEAD"
    try:
        result = verify(ref=ref, figures_dir=folders.figures, processed_dir=folders.processed)
    except VerifyError as error:
        print(f"verify: {error}", file=sys.stderr)
        return 2
    print(result.text())
    return 0 if result.passed else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
