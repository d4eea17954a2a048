"""A run: its settings and its folders, passed to whatever reads or writes a run's files.

Every notebook starts with ``run = stages.start(run, overrides)``: it loads the run file (the
notebook's one parameter), chooses the run's folders, applies the figure style, the display
rules and the warning filters, and returns a :class:`Run`. Nothing below this layer knows where a
run writes: a function that reads or writes a run's file is given the folder (``run.folders``),
or a store (``run.store(study)``).

The environment variables ``VALUELEX_PROCESSED``, ``VALUELEX_FIGURES``, ``VALUELEX_BUILD``,
``VALUELEX_RAW`` and ``VALUELEX_RAW_BASE`` (the tests point a run at temporary folders with them)
are read here, in :meth:`Folders.of`, and nowhere else.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core import io, paths, process
from ..core.display import use_display_rules
from ..settings import RunSettings, load_run

#: The environment variables that move a run's folders (``Folders.of`` reads them; ``valuelex run`` sets them).
FOLDER_ENV = ("VALUELEX_PROCESSED", "VALUELEX_FIGURES", "VALUELEX_BUILD", "VALUELEX_RAW", "VALUELEX_RAW_BASE")


@dataclass(frozen=True)
class Folders:
    """Where one run's outputs go, its own response store, and the read-only store under it (or None)."""

    processed: Path
    figures: Path
    build: Path
    raw: Path
    base: Path | None = None

    @classmethod
    def of(cls, run: RunSettings) -> Folders:
        """The run's folders; ``VALUELEX_PROCESSED``/``_FIGURES``/``_BUILD``/``_RAW``/``_RAW_BASE``, when set, win.

        A store named by ``VALUELEX_RAW`` alone (a test's own store) has no base unless
        ``VALUELEX_RAW_BASE`` names one too.
        """
        if run.writes_committed_outputs:
            mine = cls(paths.COMMITTED_PROCESSED, paths.COMMITTED_FIGURES, paths.COMMITTED_BUILD, run.raw_dir, None)
        else:
            out = run.output_dir
            mine = cls(out / "data" / "processed", out / "figures", out / "build", run.raw_dir, run.base_dir)
        env = {name: os.environ.get(f"VALUELEX_{name.upper()}") for name in ("processed", "figures", "build", "raw")}
        chosen: dict[str, Any] = {name: Path(value) if value else getattr(mine, name) for name, value in env.items()}
        if "VALUELEX_RAW_BASE" in os.environ:
            base = os.environ["VALUELEX_RAW_BASE"]
            chosen["base"] = Path(base) if base else None
        else:
            chosen["base"] = None if env["raw"] else mine.base
        return cls(**chosen)

    @property
    def logs(self) -> Path:
        """The run's logs (notebooks' logs, local servers' logs)."""
        return self.build / "logs"

    @property
    def embeddings(self) -> Path:
        """The run's embedding cache (keyed by model and text; never committed)."""
        return self.processed / "cache" / "embeddings"

    def environment(self) -> dict[str, str]:
        """The variables that give a child process (a notebook's kernel) these folders."""
        values = (self.processed, self.figures, self.build, self.raw, self.base or "")
        return {name: str(value) for name, value in zip(FOLDER_ENV, values, strict=True)}


@dataclass(frozen=True)
class Run:
    """One run: its settings (``run.settings.efa.rotation``...) and its folders (``run.folders.processed``...)."""

    settings: RunSettings
    folders: Folders
    overrides: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, settings: RunSettings, overrides: dict[str, Any] | None = None) -> Run:
        return cls(settings, Folders.of(settings), dict(overrides or {}))

    def store(self, study: str):
        """The response store of one study (``elicitation``, ``projective``, ``judge``...): the run's own,
        over the read-only dataset for every run but the committed one."""
        from ..llm.runstore import open_store

        base = self.folders.base / study if self.folders.base is not None else None
        return open_store(self.folders.raw / study, base)

    # Saving with the run's folders (core.io does the writing) -----------------------------
    def save_figure(self, fig: Any, name: str) -> io.Saved:
        """``name.png`` and ``name.pdf`` in the run's figures folder."""
        return io.save_figure(fig, name, self.folders.figures)

    def save_table(self, df: Any, name: str, **kw: Any) -> io.Saved:
        """``name.csv`` and ``name.md`` in the run's figures folder."""
        return io.save_table(df, name, self.folders.figures, **kw)

    def save_data(self, df: Any, name: str, **kw: Any) -> Path:
        """``name.csv`` in the run's ``data/processed``."""
        return io.save_data(df, name, self.folders.processed, **kw)

    def save_json(self, data: dict[str, Any], name: str) -> Path:
        """``name.json`` in the run's ``data/processed`` (indented by one space, a final newline)."""
        path = self.folders.processed / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        return path

    def __repr__(self) -> str:
        where = self.folders.processed.parent
        try:  # relative to the project, as a reader's checkout names it (no absolute path of this machine)
            where = where.resolve().relative_to(paths.ROOT.resolve())
        except ValueError:
            pass
        return f"Run({self.settings.name!r}, outputs in {where})"


def start(run: str | Path | RunSettings = "default", overrides: dict[str, Any] | None = None) -> Run:
    """Load the run file, choose its folders, set the figure style and the display rules: the run."""
    process.tie_kernel()  # run by `valuelex run`: this kernel dies with papermill, even when that is SIGKILLed
    settings = run if isinstance(run, RunSettings) else load_run(run, overrides)
    started = Run.of(settings, overrides)
    io.apply_style()
    use_display_rules()
    return started


# Stages: what a notebook computes, with its inputs and outputs declared ---------------------------
@dataclass(frozen=True)
class Output:
    """One file set a stage writes: a ``figure`` (PNG and PDF in the figures folder), a ``table`` (CSV and
    Markdown there), ``data`` (a CSV in ``data/processed``) or ``json`` (a JSON file there). ``optional``:
    written only when its input is there (e.g. notebook 09's projective bars need notebook 06's scores)."""

    name: str
    kind: str  # "figure", "table", "data" or "json"
    optional: bool = False

    def files(self, folders: Folders) -> list[Path]:
        if self.kind == "figure":
            return [folders.figures / f"{self.name}.png", folders.figures / f"{self.name}.pdf"]
        if self.kind == "table":
            return [folders.figures / f"{self.name}.csv", folders.figures / f"{self.name}.md"]
        if self.kind == "json":
            return [folders.processed / f"{self.name}.json"]
        return [folders.processed / f"{self.name}.csv"]


@dataclass(frozen=True)
class Stage:
    """A notebook's computation as the package's unit: the notebook only narrates ``stage.run(run)``.

    ``inputs`` are the ``data/processed`` files it reads; ``outputs`` every file it writes (the figure
    index is made from them, and a test checks that a run writes exactly these, ``files(folders, settings)``).
    """

    number: str
    name: str
    notebook: str
    inputs: tuple[str, ...]
    outputs: tuple[Output, ...]
    #: For a stage whose outputs depend on the run's settings (06: its scored cases are named by its scorers):
    #: the outputs of a run with these settings. ``outputs`` is then every output the stage may write.
    run_outputs: Callable[[RunSettings], tuple[Output, ...]] | None = None

    def outputs_for(self, settings: RunSettings | None = None) -> tuple[Output, ...]:
        """The outputs of a run with these settings; without settings, every output the stage may write."""
        if settings is None or self.run_outputs is None:
            return self.outputs
        return self.run_outputs(settings)

    def files(self, folders: Folders, settings: RunSettings | None = None) -> list[Path]:
        """Every file the stage writes into a run's folders (a run with ``settings``: see ``outputs_for``)."""
        return [f for out in self.outputs_for(settings) for f in out.files(folders)]


class Figures(dict):
    """A stage's figures by name, also as attributes (``r.figures.lexicon_map``); each is shown where the
    notebook names it, not where it was drawn."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None
