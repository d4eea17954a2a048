"""The projective instrument and its administration: stems, requests, completions, scoring cases.

The instrument (``configs/instruments/projective.yaml``) lists our stems and which sub-dimensions
each is meant to reveal; ``administer`` asks a panel through the LLM layer, so the completions
land in (and replay from) ``data/raw/projective/``; ``scoring_cases`` turns usable completions
into cases (completion x sub-dimension) for the scorers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ..core import paths
from ..core.errors import ConfigError
from ..llm.cards import Panel, load_panel
from ..llm.limits import Limits
from ..llm.request import Request, panel_requests, respondent_columns
from ..llm.runner import LLMRunner
from ..llm.store import ResponseStore

STUDY = "projective"
JUDGE_STUDY = "judge"
SUBDIMENSIONS = ("Self-Competent", "User-Oriented", "Social", "Idealistic", "Professional", "Ethical")
DIMENSIONS = {
    "Competence": ("Self-Competent", "User-Oriented"),
    "Character": ("Social", "Idealistic"),
    "Integrity": ("Professional", "Ethical"),
}
# Other spellings met in labelled data (the lab's FULVa set says "Self-Competence").
_ALIASES = {"self-competence": "Self-Competent", "selfcompetent": "Self-Competent", "self competent": "Self-Competent"}
DEFAULT_JUDGE = "qwen2.5-coder-1.5b-instruct"
DEFAULT_PANEL = "projective_local"
INSTRUMENT_FILE = paths.INSTRUMENTS / "projective.yaml"
RUBRIC_FILE = paths.INSTRUMENTS / "rubrics.yaml"
DESCRIPTIONS_FILE = paths.INSTRUMENTS / "subdimension_descriptions.yaml"
CALIBRATION_FILE = paths.INSTRUMENTS / "embedding_calibration.yaml"
STANCE_CALIBRATION_FILE = paths.INSTRUMENTS / "stance_calibration.yaml"


def canonical_subdimension(name: str) -> str:
    """The paper's spelling of a sub-dimension name (accepts the lab's 'Self-Competence')."""
    for sub in SUBDIMENSIONS:
        if name.strip().lower() == sub.lower():
            return sub
    alias = _ALIASES.get(name.strip().lower())
    if alias is None:
        raise ValueError(f"unknown sub-dimension {name!r} (known: {', '.join(SUBDIMENSIONS)})")
    return alias


# ---------------------------------------------------------------------------------------------
# The instrument
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Stem:
    id: str
    text: str
    kind: str  # "classic" (open Rotter-style stem) or "targeted" (written for given sub-dimensions)
    polarity: str  # "positive", "negative" or "neutral"
    targets: tuple[str, ...]


@dataclass(frozen=True)
class Instrument:
    version: str
    system: str | None
    instruction: str
    stems: tuple[Stem, ...]

    def stem(self, stem_id: str) -> Stem:
        for s in self.stems:
            if s.id == stem_id:
                return s
        raise KeyError(f"no stem {stem_id!r} in the instrument (version {self.version})")

    def select(self, stem_ids: Sequence[str] | None = None) -> Instrument:
        """The same instrument restricted to some stems (in the instrument's order)."""
        if not stem_ids:
            return self
        unknown = set(stem_ids) - {s.id for s in self.stems}
        if unknown:
            raise KeyError(f"unknown stem ids: {', '.join(sorted(unknown))}")
        chosen = tuple(s for s in self.stems if s.id in set(stem_ids))
        return Instrument(self.version, self.system, self.instruction, chosen)


def load_instrument(path: str | Path = INSTRUMENT_FILE) -> Instrument:
    """Read and check the projective instrument."""
    path = Path(path)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key in ("version", "instruction", "stems"):
        if key not in data:
            raise ConfigError(f"{path}: missing required field {key!r}")
    if "{stem}" not in data["instruction"]:
        raise ConfigError(f"{path}: field 'instruction' must contain the placeholder {{stem}}")
    stems = []
    for i, s in enumerate(data["stems"]):
        for key in ("id", "kind", "polarity", "text", "targets"):
            if key not in s:
                raise ConfigError(f"{path}: missing required field 'stems[{i}].{key}'")
        if s["kind"] not in ("classic", "targeted"):
            raise ConfigError(f"{path}: field 'stems[{i}].kind' must be classic or targeted, got {s['kind']!r}")
        if s["polarity"] not in ("positive", "negative", "neutral"):
            raise ConfigError(f"{path}: field 'stems[{i}].polarity' must be positive, negative or neutral")
        if s["targets"] == "all":
            targets = SUBDIMENSIONS
        else:
            try:
                targets = tuple(canonical_subdimension(t) for t in s["targets"])
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"{path}: field 'stems[{i}].targets': {exc}") from None
        stems.append(Stem(str(s["id"]), str(s["text"]), s["kind"], s["polarity"], targets))
    ids = [s.id for s in stems]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{path}: field 'stems' has duplicate ids")
    return Instrument(str(data["version"]), data.get("system"), str(data["instruction"]), tuple(stems))


# ---------------------------------------------------------------------------------------------
# Administration
# ---------------------------------------------------------------------------------------------
def build_requests(
    panel: Panel,
    instrument: Instrument,
    *,
    max_models: int | None = None,
    respondents_per_model: int | None = None,
) -> list[Request]:
    """One request per respondent x stem x sample, in a stable order."""
    system = [("system", instrument.system.strip())] if instrument.system else []
    items = [(stem.id, [*system, ("user", instrument.instruction.format(stem=stem.text))]) for stem in instrument.stems]
    models = panel.models[:max_models] if max_models else panel.models
    return panel_requests(panel, items, instrument.version, models=models, respondents_per_model=respondents_per_model)


_WRAPPING_QUOTES = re.compile(r'^[\s"“”\'‘’]+|[\s"“”\'‘’]+$')
_LEAD_LABEL = re.compile(r"^\s*(?:answer|completion|completed sentence)\s*:\s*", re.I)


def clean_completion(text: str | None) -> str:
    """The completion as scored: first paragraph, without wrapping quotes or an 'Answer:' label."""
    if not text:
        return ""
    text = _LEAD_LABEL.sub("", text.strip())
    text = re.split(r"\n\s*\n|\n\s*(?:Question|Answer):", text)[0]
    return " ".join(_WRAPPING_QUOTES.sub("", text).split())


def completion_text(stem: str, completion: str) -> str:
    """The stem and its completion as one sentence (the completion may or may not repeat the stem)."""
    head = stem.strip().rstrip(".…").strip()
    body = completion.strip()
    if body.lower().startswith(head.lower()):
        return body
    return f"{head} {body.lstrip('.… ')}".strip()


def completion_only(stem: str, completion: str) -> str:
    """The completion without the stem (removed when the completion repeats it); empty if only the stem."""
    head = stem.strip().rstrip(".…").strip()
    body = completion.strip()
    if head and body.lower().startswith(head.lower()):
        body = body[len(head) :]
    rest = body.lstrip(".…, ").strip()
    return rest if rest.strip(" .…,;:!?\"'“”") else ""


def completions_table(
    panel: Panel, instrument: Instrument, requests: list[Request], records: list[dict[str, Any]]
) -> pd.DataFrame:
    """One row per request: respondent, stem, raw and cleaned completion, and whether it is usable."""
    rows = []
    for req, rec in zip(requests, records, strict=True):
        card = panel.cards[req.model]
        stem = instrument.stem(req.prompt_id)
        completion = clean_completion(rec.get("text"))
        rows.append(
            {
                **respondent_columns(req, card),
                "sample": req.sample,
                "stem_id": stem.id,
                "stem": stem.text,
                "kind": stem.kind,
                "polarity": stem.polarity,
                "status": rec["status"],
                # usable: the call succeeded and the model added something to the stem
                "usable": bool(rec.get("usable", False)) and completion_only(stem.text, completion) != "",
                "finish_reason": rec.get("finish_reason"),
                "completion_tokens": (rec.get("usage") or {}).get("completion_tokens", 0),
                "raw_text": rec.get("text"),
                "completion": completion,
                "key": rec["key"],
            }
        )
    return pd.DataFrame(rows)


def administer(
    panel: str | Path | Panel = DEFAULT_PANEL,
    *,
    mode: str = "replay",
    stem_ids: Sequence[str] | None = None,
    max_models: int | None = None,
    respondents_per_model: int | None = None,
    store: ResponseStore,
    limits: Limits | None = None,
    progress: bool = True,
) -> tuple[pd.DataFrame, LLMRunner]:
    """Ask (live) or replay the sentence-completion test; returns the completions and the runner.

    ``limits`` defaults to no re-asks: with a fixed seed a re-ask returns the same text.
    """
    if not isinstance(panel, Panel):
        panel = load_panel(panel)
    instrument = load_instrument().select(stem_ids)
    requests = build_requests(panel, instrument, max_models=max_models, respondents_per_model=respondents_per_model)
    runner = LLMRunner(panel.cards, store, mode=mode, limits=limits or Limits(max_reasks=0), progress=progress)
    records = runner.run(requests)
    return completions_table(panel, instrument, requests, records), runner


def scoring_cases(completions: pd.DataFrame, instrument: Instrument | None = None) -> pd.DataFrame:
    """One row per usable completion x sub-dimension its stem targets (classic stems: all six)."""
    instrument = instrument or load_instrument()
    usable = completions[completions["usable"]]
    rows = []
    for rec in usable.to_dict("records"):
        for sub in instrument.stem(rec["stem_id"]).targets:
            rows.append({**rec, "subdimension": sub})
    cols = list(completions.columns) + ["subdimension"]
    return pd.DataFrame(rows, columns=cols).reset_index(drop=True)
