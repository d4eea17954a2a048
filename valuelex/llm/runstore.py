"""A run's response store: its own folder on top of a read-only base, and adopting a run's answers.

Every run but the committed one keeps the answers it pays for in its **own** store
(``runs/NAME/raw/<study>/``) and reads the committed dataset ``data/raw/<study>/`` as its
**base**: a request answered in either is replayed, never asked again, and nothing is ever
written to the base (:class:`LayeredStore`). ``valuelex adopt NAME`` (:func:`adopt`) is the one
way a run's answers enter the dataset: it appends the records of the run's own store to
``data/raw/``, skipping those already there, so that adopting twice changes nothing.

The layering sits on :class:`valuelex.llm.store.ResponseStore` without changing it: the runner
(:class:`valuelex.llm.runner.LLMRunner`) reads through ``get``, ``damaged``, ``lost``, ``last_attempt`` and
``maybe_paid`` (both layers) and writes through ``append`` (the own store only); the run lock is the own store's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core import paths
from ..core.errors import UserError
from .store import ResponseStore, canonical_json


class LayeredStore(ResponseStore):
    """A response store (``root``, written) over a read-only ``base`` store (never written, never locked).

    A request's answer is the own store's when it has a successful one, else the base's, else
    whatever the own store has (a stored error); damaged lines of both are reported.
    """

    def __init__(self, root: str | Path, base: str | Path, announce: bool = True):
        self.base = ResponseStore(base, announce=announce)  # before super(): its __init__ calls reload()
        super().__init__(root, announce=announce)

    def reload(self):  # type: ignore[no-untyped-def]
        self.base.reload()
        return super().reload()

    def get(self, key: str) -> dict[str, Any] | None:
        own = super().get(key)
        if own is not None and own["status"] == "ok":
            return own
        base = self.base.get(key)
        if base is not None and (own is None or base["status"] == "ok"):
            return base
        return own

    def damaged(self, key: str):  # type: ignore[no-untyped-def]
        return [*self.base.damaged(key), *super().damaged(key)]

    def lost(self, key: str) -> list[int]:
        return sorted({*self.base.lost(key), *super().lost(key)})

    def last_attempt(self, key: str) -> int:
        return max(self.base.last_attempt(key), super().last_attempt(key))

    def maybe_paid(self, key: str) -> bool:
        return self.base.maybe_paid(key) or super().maybe_paid(key)

    def __contains__(self, key: str) -> bool:
        return super().__contains__(key) or key in self.base

    def final_records(self) -> list[dict[str, Any]]:
        keys = dict.fromkeys(r["key"] for r in [*self.base.final_records(), *super().final_records()])
        return [self.get(k) for k in keys]  # type: ignore[misc]

    def __len__(self) -> int:
        return len(self.final_records())

    def records(self) -> list[dict[str, Any]]:
        return [*self.base.records(), *super().records()]

    def usage_by_model(self) -> dict[str, Counter]:
        out: dict[str, Counter] = {}
        for layer in (self.base.usage_by_model(), super().usage_by_model()):
            for model, counts in layer.items():
                out.setdefault(model, Counter()).update(counts)
        return out


def open_store(root: str | Path, base: str | Path | None = None) -> ResponseStore:
    """The response store at ``root`` over the read-only ``base`` (None: no base; a run's stores come
    from ``valuelex.stages.Run.store``, which layers every run but the committed one over the dataset)."""
    root = Path(root)
    if base is None or Path(base).resolve() == root.resolve():
        return ResponseStore(root)
    return LayeredStore(root, base)


# ------------------------------------------------------------------------------------------
# Adopting a run's answers into the dataset
# ------------------------------------------------------------------------------------------
class NothingToAdopt(UserError):
    """The run has no store of its own, or is the committed run (whose store is the dataset)."""


@dataclass
class Adopted:
    """What ``adopt`` added to the dataset, per study and model."""

    dataset: Path
    added: dict[str, Counter] = field(default_factory=dict)  # study -> model -> records added
    answers: dict[str, Counter] = field(default_factory=dict)  # study -> model -> final records added
    already: int = 0  # records that were in the dataset already

    @property
    def records(self) -> int:
        return sum(sum(c.values()) for c in self.added.values())

    def lines(self) -> list[str]:
        out = []
        for study, models in self.added.items():
            for model, n in sorted(models.items()):
                answers = self.answers.get(study, Counter())[model]
                out.append(f"{study}/{model}: {n} record(s) added ({answers} answer(s))")
        return out


def adopt(run: Any, dataset: Path | None = None, say: Callable[[str], None] = print) -> Adopted:
    """Append the records of ``run``'s own store to the dataset (``data/raw/``), skipping those already there.

    ``run`` is a :class:`valuelex.settings.RunSettings`. Each study's records are copied in file
    order, failed attempts included (they are the log of what was paid for), with both stores'
    run locks held, so that no live run writes either meanwhile. Damaged lines of the run's store
    are reported and not copied.
    """
    dataset = Path(dataset or paths.DATASET)
    own_root = Path(run.raw_dir)
    if run.committed or own_root.resolve() == dataset.resolve():
        raise NothingToAdopt(
            f"run {run.name!r} is the committed run: its store is the dataset {_shown(dataset)} already"
        )
    studies = (
        sorted(p for p in own_root.iterdir() if p.is_dir() and not p.name.startswith(".")) if own_root.is_dir() else []
    )
    if not studies:
        raise NothingToAdopt(f"run {run.name!r} has no answers of its own to adopt ({_shown(own_root)} holds no study)")
    result = Adopted(dataset)
    for folder in studies:
        own = ResponseStore(folder)
        target = ResponseStore(dataset / folder.name)
        with own.run_lock(), target.run_lock():
            own.reload()
            target.reload()
            present = {canonical_json(r) for r in target.records()}
            for record in own.records():
                if canonical_json(record) in present:
                    result.already += 1
                    continue
                target.append(record)
                model = record["request"]["model"]
                result.added.setdefault(folder.name, Counter())[model] += 1
                result.answers.setdefault(folder.name, Counter())[model] += int(bool(record["final"]))
    for line in result.lines():
        say(line)
    if result.records:
        say(
            f"adopted {result.records} record(s) of run {run.name!r} into {_shown(dataset)} "
            f"({result.already} were there already); review with `git status {_shown(dataset)}` and commit them"
        )
    else:
        say(f"nothing new: every record of run {run.name!r} is in {_shown(dataset)} already ({result.already})")
    return result


def _shown(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(paths.ROOT.resolve())) + "/"
    except ValueError:
        return str(path)
