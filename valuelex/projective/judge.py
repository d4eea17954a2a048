"""The LLM judge: a rubric per sub-dimension, answers stored in ``data/raw/judge/``."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from .. import paths
from ..config import ConfigError, ModelCard, load_model_cards
from ..llm import Limits, LLMRunner, Request
from ..store import ResponseStore
from .instrument import DEFAULT_JUDGE, JUDGE_STUDY, RUBRIC_FILE, SUBDIMENSIONS, canonical_subdimension, load_instrument


# --- the LLM judge ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Rubrics:
    version: str
    system: str
    template: str
    scale: tuple[int, int]
    subdimensions: dict[str, dict[str, str]]

    def prompt(self, subdimension: str, stem: str, completion: str) -> str:
        r = self.subdimensions[canonical_subdimension(subdimension)]
        return self.template.format(
            subdimension=canonical_subdimension(subdimension),
            definition=r["definition"],
            high=r["high"],
            low=r["low"],
            stem=stem.strip(),
            completion=" ".join(completion.split()),
        )


def load_rubrics(path: str | Path = RUBRIC_FILE) -> Rubrics:
    """Read the judge rubrics (one per sub-dimension)."""
    path = Path(path)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key in ("version", "system", "template", "scale", "subdimensions"):
        if key not in data:
            raise ConfigError(f"{path}: missing required field {key!r}")
    subs = {canonical_subdimension(k): v for k, v in data["subdimensions"].items()}
    for name in SUBDIMENSIONS:
        for key in ("definition", "high", "low"):
            if key not in subs.get(name, {}):
                raise ConfigError(f"{path}: missing required field 'subdimensions.{name}.{key}'")
    scale = (int(data["scale"]["min"]), int(data["scale"]["max"]))
    return Rubrics(str(data["version"]), str(data["system"]).strip(), str(data["template"]), scale, subs)


@dataclass(frozen=True)
class Verdict:
    """A judge's answer, parsed: status is ok, invalid (no usable score), refused or empty."""

    status: str
    score: int | None
    rationale: str


_REFUSAL = re.compile(
    r"\b(i'?m sorry|i am sorry|i can(?:not|'t) (?:help|assist|comply|do that|evaluate)|as an ai)\b", re.I
)
_SCORE_FIELD = re.compile(r"""["']?score["']?\s*[:=]\s*["']?(-?\d+(?:\.\d+)?)""", re.I)
_RATIONALE_FIELD = re.compile(r"""["']?rationale["']?\s*[:=]\s*["']((?:[^"'\\]|\\.)*)""", re.I)


def parse_verdict(text: str | None, scale: tuple[int, int] = (1, 5)) -> Verdict:
    """Parse a judge answer leniently (code fences, extra prose, single quotes, truncation); never raises."""
    if text is None or not text.strip():
        return Verdict("empty", None, "")
    body = re.sub(r"```(?:json)?", "", text).strip()
    obj: Any = None
    match = re.search(r"\{.*\}", body, re.S)
    if match:
        for candidate in (match.group(0), match.group(0).replace("'", '"')):
            try:
                obj = json.loads(candidate)
                break
            except json.JSONDecodeError:
                continue
    score: Any = None
    rationale = ""
    if isinstance(obj, dict):
        score = obj.get("score")
        rationale = str(obj.get("rationale", "") or "")
    if score is None:
        found = _SCORE_FIELD.search(body)
        score = found.group(1) if found else None
        found_r = _RATIONALE_FIELD.search(body)
        rationale = found_r.group(1) if found_r else rationale
    try:
        value = float(score) if score is not None and not isinstance(score, bool) else None
    except (TypeError, ValueError):
        value = None
    if value is not None and value.is_integer() and scale[0] <= value <= scale[1]:
        return Verdict("ok", int(value), rationale.strip())
    if value is None and _REFUSAL.search(body):
        return Verdict("refused", None, body[:200])
    return Verdict("invalid", None, body[:200])


class JudgeScorer:
    """An LLM judge scores each case on its sub-dimension (1-5, mapped to (score - 1) / 4).

    Calls go through ``LLMRunner`` into the store ``data/raw/judge/`` (temperature 0, seed 0, no
    re-asks), so a replay reproduces every verdict. Refused and invalid answers are kept in the
    store, counted, and given ``score = NaN`` and ``valid = False``.
    """

    name = "judge"

    def __init__(
        self,
        judge_model: str = DEFAULT_JUDGE,
        *,
        mode: str = "replay",
        cards: dict[str, ModelCard] | None = None,
        store_root: Path | None = None,
        rubrics: Rubrics | None = None,
        max_tokens: int = 80,
        limits: Limits | None = None,
        progress: bool = True,
    ):
        self.cards = cards or load_model_cards()
        if judge_model not in self.cards:
            raise KeyError(f"no model card for judge {judge_model!r} (known: {', '.join(sorted(self.cards))})")
        self.judge_model = judge_model
        self.rubrics = rubrics or load_rubrics()
        self.max_tokens = max_tokens
        store = ResponseStore(store_root or paths.raw_store(JUDGE_STUDY))
        scale = self.rubrics.scale
        self.runner = LLMRunner(
            {judge_model: self.cards[judge_model]},
            store,
            mode=mode,
            limits=limits or Limits(max_reasks=0),
            validator=lambda text: parse_verdict(text, scale).status == "ok",
            progress=progress,
        )

    def requests(self, cases: pd.DataFrame) -> list[Request]:
        out = []
        for stem, completion, sub in zip(cases["stem"], cases["completion"], cases["subdimension"], strict=True):
            sub = canonical_subdimension(sub)
            messages = (("system", self.rubrics.system), ("user", self.rubrics.prompt(sub, stem, completion)))
            out.append(
                Request(
                    model=self.judge_model,
                    messages=messages,
                    temperature=0.0,
                    top_p=1.0,
                    max_tokens=self.max_tokens,
                    seed=0,
                    prompt_id=f"rubric:{sub}",
                    prompt_version=self.rubrics.version,
                )
            )
        return out

    def score(self, cases: pd.DataFrame) -> pd.DataFrame:
        records = self.runner.run(self.requests(cases)) if len(cases) else []
        lo, hi = self.rubrics.scale
        verdicts = [
            parse_verdict(r.get("text"), self.rubrics.scale) if r["status"] == "ok" else Verdict("error", None, "")
            for r in records
        ]
        out = cases.copy()
        out["judge_score"] = [v.score for v in verdicts]
        out["score"] = [np.nan if v.score is None else (v.score - lo) / (hi - lo) for v in verdicts]
        out["valid"] = [v.status == "ok" for v in verdicts]
        out["status"] = [v.status for v in verdicts]
        out["rationale"] = [v.rationale for v in verdicts]
        out["judge_key"] = [r["key"] for r in records]
        return out


def judge_sample(
    cases: pd.DataFrame, respondents_per_model: int = 1, targeted_only: bool = True, primary_only: bool = True
) -> pd.DataFrame:
    """The cases the judge scores on a panel (it is slow locally): targeted stems, first respondents.

    Classic stems are scored on all six sub-dimensions, six judge calls per completion; the
    default sample keeps only value-targeted stems, on their first (primary) target, from each
    model's first respondent(s) in panel order.
    """
    chosen = cases[cases["kind"] == "targeted"] if targeted_only else cases
    if primary_only and len(chosen):
        instrument = load_instrument()
        primary = chosen["stem_id"].map(lambda i: instrument.stem(i).targets[0])
        chosen = chosen[chosen["subdimension"] == primary]
    order = {r: i for i, r in enumerate(dict.fromkeys(cases["respondent"]))}
    keep = []
    for _, group in chosen.groupby("model", sort=False):
        firsts = sorted(group["respondent"].unique(), key=order.__getitem__)[:respondents_per_model]
        keep.append(group[group["respondent"].isin(firsts)])
    return pd.concat(keep) if keep else chosen.iloc[0:0]
