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

from ..core.errors import ConfigError
from ..llm.cards import ModelCard, load_model_cards
from ..llm.limits import Limits
from ..llm.request import Request
from ..llm.runner import LLMRunner
from ..llm.store import ResponseStore
from .instrument import DEFAULT_JUDGE, RUBRIC_FILE, SUBDIMENSIONS, canonical_subdimension, load_instrument


# --- the LLM judge ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Rubrics:
    version: str
    system: str
    template: str
    scale: tuple[int, int]
    subdimensions: dict[str, dict[str, str]]
    logprob_version: str = ""
    logprob_template: str = ""
    logprob_system: str = ""

    def prompt(self, subdimension: str, stem: str, completion: str, template: str | None = None) -> str:
        r = self.subdimensions[canonical_subdimension(subdimension)]
        return (template or self.template).format(
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
    present = [k for k in ("logprob_version", "logprob_system", "logprob_template") if k in data]
    if present and len(present) < 3:
        raise ConfigError(f"{path}: fields 'logprob_version', 'logprob_system' and 'logprob_template' go together")
    return Rubrics(
        str(data["version"]),
        str(data["system"]).strip(),
        str(data["template"]),
        scale,
        subs,
        str(data.get("logprob_version", "")),
        str(data.get("logprob_template", "")),
        str(data.get("logprob_system", "")).strip(),
    )


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
        store: ResponseStore,
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


# --- the log-probability judge ---------------------------------------------------------------
#: Top log-probabilities asked for the judge's one answer token.
TOP_LOGPROBS = 20
#: Probability the answer tokens must carry together for a verdict to count (else: off-scale).
MIN_ANSWER_MASS = 0.5


def answer_distribution(logprobs: dict[str, Any] | None, scale: tuple[int, int] = (1, 5)) -> tuple[np.ndarray, float]:
    """Probabilities of the scale's answer tokens at the first generated token, and their total mass.

    Reads the OpenAI shapes llama.cpp's server returns: chat (``content[0].top_logprobs``, a list
    of ``{token, logprob}``) and completions (``top_logprobs[0]``, a ``{token: logprob}`` dict).
    Tokens are compared without surrounding white space, so " 4" and "4" both count as 4. The
    returned probabilities are normalised over the scale (they sum to 1 when the mass is > 0).
    """
    values = np.arange(scale[0], scale[1] + 1)
    probs = np.zeros(len(values))
    if not logprobs:
        return probs, 0.0
    if logprobs.get("content"):
        first = logprobs["content"][0] or {}
        pairs = [(t.get("token", ""), t.get("logprob")) for t in first.get("top_logprobs") or []]
        if not pairs:
            pairs = [(first.get("token", ""), first.get("logprob"))]
    elif logprobs.get("top_logprobs"):
        pairs = list((logprobs["top_logprobs"][0] or {}).items())
    else:
        return probs, 0.0
    for token, logprob in pairs:
        text = str(token).strip()
        if logprob is None or not text.isdigit() or not scale[0] <= int(text) <= scale[1]:
            continue
        probs[int(text) - scale[0]] += float(np.exp(logprob))
    mass = float(probs.sum())
    return (probs / mass if mass > 0 else probs), mass


def call_order(requests: list[Request]) -> list[int]:
    """The order in which to ask ``requests``: by their prompt text, so that neighbours share the longest prefix.

    llama.cpp's server keeps the evaluated prompt and re-evaluates only what differs from it
    (the cached prefix). Sorted by text, the calls of one rubric come together, and within a
    rubric those of one stem, so a call evaluates little more than its completion
    (``docs/benchmarks.md``, "The stance judge"). The answers do not depend on the order.
    """
    return sorted(range(len(requests)), key=lambda i: (requests[i].messages, i))


class LogprobJudge:
    """The judge reads the rubric and the case and writes one token; the score is its expected rating.

    P(rating = k) for k = 1..5 comes from the log-probabilities of the answer tokens (no sampling,
    no parsing of free text); the score is (E[rating] - 1) / 4 in [0, 1]. A verdict is off-scale
    (``valid = False``) when the five answer tokens carry less than ``MIN_ANSWER_MASS`` of the
    probability. Calls go through ``LLMRunner`` into ``data/raw/judge/`` (temperature 0, seed 0,
    one token, requests ordered by their text so that the shared rubric and stem are evaluated once:
    ``call_order``).
    """

    name = "logprob_judge"

    def __init__(
        self,
        judge_model: str = DEFAULT_JUDGE,
        *,
        mode: str = "replay",
        cards: dict[str, ModelCard] | None = None,
        store: ResponseStore,
        rubrics: Rubrics | None = None,
        limits: Limits | None = None,
        progress: bool = True,
    ):
        self.cards = cards or load_model_cards()
        if judge_model not in self.cards:
            raise KeyError(f"no model card for judge {judge_model!r} (known: {', '.join(sorted(self.cards))})")
        self.judge_model = judge_model
        self.rubrics = rubrics or load_rubrics()
        if not self.rubrics.logprob_template:
            raise ConfigError(f"{RUBRIC_FILE}: missing required field 'logprob_template' (the log-probability judge)")
        card = self.cards[judge_model]
        self.extra = (
            (("logprobs", True), ("top_logprobs", TOP_LOGPROBS))
            if card.api == "chat"
            else (("logprobs", TOP_LOGPROBS),)
        )
        self.runner = LLMRunner(
            {judge_model: card},
            store,
            mode=mode,
            limits=limits or Limits(max_reasks=0),
            validator=lambda text: True,  # the answer is in the log-probabilities, not the text
            progress=progress,
        )

    def requests(self, cases: pd.DataFrame) -> list[Request]:
        out = []
        for stem, completion, sub in zip(cases["stem"], cases["completion"], cases["subdimension"], strict=True):
            sub = canonical_subdimension(sub)
            prompt = self.rubrics.prompt(sub, stem, completion, self.rubrics.logprob_template)
            out.append(
                Request(
                    model=self.judge_model,
                    messages=(("system", self.rubrics.logprob_system), ("user", prompt)),
                    temperature=0.0,
                    top_p=1.0,
                    max_tokens=1,
                    seed=0,
                    prompt_id=f"logprob-rubric:{sub}",
                    prompt_version=self.rubrics.logprob_version,
                    extra=self.extra,
                )
            )
        return out

    def score(self, cases: pd.DataFrame, stored_only: bool = False) -> pd.DataFrame:
        """Score every case; with ``stored_only`` (replay), cases whose call is not stored get status "not judged"."""
        requests = self.requests(cases)
        order = call_order(requests)
        if stored_only:
            card = self.cards[self.judge_model]
            order = [i for i in order if self.runner.store.get(requests[i].key(card)) is not None]
        records: list[dict[str, Any]] = [{"status": "not judged"}] * len(requests)
        if order:
            for i, record in zip(order, self.runner.run([requests[i] for i in order]), strict=True):
                records[i] = record
        lo, hi = self.rubrics.scale
        values = np.arange(lo, hi + 1)
        rows = []
        for record in records:
            if record.get("status") != "ok":
                rows.append((np.nan, np.nan, 0.0, "not judged" if record.get("status") == "not judged" else "error"))
                continue
            probs, mass = answer_distribution(record.get("logprobs"), self.rubrics.scale)
            if mass < MIN_ANSWER_MASS:
                rows.append((np.nan, np.nan, mass, "off-scale"))
                continue
            expected = float(probs @ values)
            rows.append((expected, (expected - lo) / (hi - lo), mass, "ok"))
        out = cases.copy()
        out["judge_expected"] = [r[0] for r in rows]
        out["score"] = [r[1] for r in rows]
        out["answer_mass"] = [r[2] for r in rows]
        out["status"] = [r[3] for r in rows]
        out["valid"] = out["status"] == "ok"
        out["rationale"] = ""
        out["judge_key"] = [r.get("key") for r in records]
        return out
