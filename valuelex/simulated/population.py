"""The planted population: models, respondents, their latent values, and the answers they give.

The generative model is :func:`valuelex.methods.simulation.simulate_model_panel`'s, moved from the 0/1
incidence matrix to the text of each answer:

* **Words.** Every value word of ``configs/simulated/vocabulary.yaml`` loads on the factor of its
  taxonomy dimension (``structure.factors: subdimension``: of its sub-dimension) with a loading in
  ``loading_range`` and small cross-loadings; factors correlate ``factor_correlation``. The word's
  frequency rank gives the share of answers naming it (Zipf-like), hence its threshold.
* **Models.** Each model has a vocabulary effect ``v_gj`` on every word (``vocabulary_icc`` of the
  word's latent variance; ``family_share`` of it shared with the model's family), a verbosity
  (one shift of every threshold), and a style drawn around its training stage's: answer forms,
  refusals, empty answers, non-value words, misspellings, adjectives for nouns, British spelling.
* **Respondents** (model x temperature x top_p x seed): latent scores ``f`` on the factors
  (``value_icc`` of their variance between models) and unique parts ``u``. Word j's propensity
  is ``eta_j = L_j f + v_gj + u_j``.
* **Answers.** Each answer adds fresh noise ``sigma * e_j`` with ``sigma`` growing with the
  temperature and top_p, and names the words whose ``eta_j + sigma e_j`` passes the word's
  threshold, strongest first. Low temperature: every answer names the same few words; high
  temperature: more varied answers reaching rarer words. At temperature 0 the seed is ignored.

Everything is drawn from seeds derived from ``population.yaml``'s seed and the request itself
(model, decoding settings, prompt), so the same request always gets the same answer, in any order
and at any concurrency; nothing depends on which other requests were asked.
"""

# Over 600 lines: one generative model behind the simulated endpoint: the request read, the planted words,
# models and respondents, and an answer rendered as text all use the population's planted state. The text
# rendering (forms, variants, misspellings, refusals) can move to a module of its own next.

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ..llm.cards import Respondent
from . import text as tx
from .spec import DEFAULT_POPULATION, STAGES, Spec, load_spec

#: What an elicitation answer does (``truth["outcome"]``); its form is ``truth["form"]``.
OUTCOMES = ("values", "refusal", "refusal_then_values", "empty", "junk")
CASE_STYLES = ("title", "first", "lower")
EXPLAINED_STYLES = ("bold_colon", "dash", "colon")
LABELS = ("Values: ", "My values: ", "Core values: ")


def rng_for(*parts: Any) -> np.random.Generator:
    """A generator seeded from the parts' text (stable across processes, platforms and Python's hash seed)."""
    text = "\x1f".join(repr(p) if isinstance(p, float) else str(p) for p in parts)
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()
    return np.random.default_rng(int.from_bytes(digest, "little"))


# ------------------------------------------------------------------------------------------
# What a request asks
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ask:
    """One request as the simulator reads it: who is asked (model and decoding) and what."""

    model: str
    api: str  # "chat" or "completions"
    system: str  # the system message(s), "" when none
    user: str  # the last user message, or the whole prompt of a completions request
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    logprobs: int | None = None  # number of top log-probabilities asked (0: only the chosen token's)

    @classmethod
    def from_body(cls, body: dict[str, Any], api: str) -> Ask:
        """An OpenAI request body (chat or completions) as an Ask; ValueError says what is wrong with it."""
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise ValueError("'model' must be a non-empty string")
        if api == "chat":
            messages = body.get("messages")
            if not isinstance(messages, list) or not messages:
                raise ValueError("'messages' must be a non-empty list")
            system, user = [], ""
            for i, m in enumerate(messages):
                if not isinstance(m, dict) or not isinstance(m.get("content"), str):
                    raise ValueError(f"'messages[{i}]' must be an object with a string 'content'")
                if m.get("role") == "system":
                    system.append(m["content"])
                elif m.get("role") == "user":
                    user = m["content"]
            system_text = "\n".join(system)
        else:
            prompt = body.get("prompt")
            if not isinstance(prompt, str):
                raise ValueError("'prompt' must be a string")
            system_text, user = "", prompt
        temperature = _number(body, "temperature", 1.0, 0.0, 2.0)
        top_p = _number(body, "top_p", 1.0, 0.0, 1.0)
        seed = body.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError("'seed' must be an integer")
        max_tokens = body.get("max_tokens", body.get("max_completion_tokens"))
        if max_tokens is not None and (
            isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
        ):
            raise ValueError("'max_tokens' must be a positive integer")
        stop = body.get("stop") or ()
        stop = (stop,) if isinstance(stop, str) else tuple(s for s in stop if isinstance(s, str))
        if api == "chat":
            logprobs = (int(body.get("top_logprobs") or 0)) if body.get("logprobs") else None
        else:
            logprobs = body.get("logprobs")
            logprobs = None if logprobs is None or isinstance(logprobs, bool) else int(logprobs)
        return cls(model, api, system_text, user, temperature, top_p, seed, max_tokens, stop, logprobs)

    @property
    def respondent(self) -> Respondent:
        return Respondent(self.model, self.temperature, self.top_p, self.seed)


def _number(body: dict[str, Any], name: str, default: float, lo: float, hi: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise ValueError(f"'{name}' must be a number in [{lo:g}, {hi:g}], got {value!r}")
    return float(value)


@dataclass
class Answer:
    """The simulator's answer to one request: its text, and the planted truth behind it."""

    text: str
    finish_reason: str  # "stop" or "length"
    prompt_tokens: int
    completion_tokens: int
    truth: dict[str, Any]
    logprobs: Any = None  # OpenAI-shaped log-probabilities, when asked


# ------------------------------------------------------------------------------------------
# The planted population
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SimModel:
    """One simulated model: who it is, its vocabulary and its style."""

    name: str
    index: int
    family: str
    stage: str
    api: str
    params_b: float
    verbosity: float  # shift of every threshold (negative: names more words)
    vocabulary: np.ndarray = field(repr=False)  # v_gj, one per value word
    mean: np.ndarray = field(repr=False)  # model mean of the factor scores (scaled by value_icc)
    forms: dict[str, float] = field(repr=False)
    rates: dict[str, float] = field(repr=False)  # refusal, refusal_then_values, empty, filler, typo, adjective, adverb
    british: bool = False
    case: str = "first"
    period: bool = True
    number_style: str = "."
    bullet: str = "-"
    oxford: bool = True
    explained: str = "bold_colon"
    stances: dict[str, tuple[str, float]] = field(default_factory=dict, repr=False)  # sub -> (high/low, consistency)


class Population:
    """The planted truth of a simulated population, and the answers its respondents give."""

    def __init__(self, spec: Spec):
        self.spec = spec
        self._words()
        self._models()
        self._respondent_cache: dict[tuple, np.ndarray] = {}
        self._prompt_ids = {text: pid for pid, text in spec.prompts.items()}
        self._stem_ids = {s["text"]: sid for sid, s in spec.stems.items()}

    @classmethod
    def load(cls, path: str | Path = DEFAULT_POPULATION) -> Population:
        return cls(load_spec(path))

    # --- words -------------------------------------------------------------------------
    def _words(self) -> None:
        spec = self.spec
        subs = spec.subdimensions
        rng = rng_for(spec.seed, "words")
        order: list[tuple[str, list[str]]] = []
        depth = max(len(v) for v in spec.values.values())
        for level in range(depth):  # deal ranks across sub-dimensions in turn, in a seeded order per level
            for k in rng.permutation(len(subs)):
                entries = spec.values[subs[k]]
                if level < len(entries):
                    order.append((subs[k], entries[level]))
        self.word_list = [forms[0] for _, forms in order]
        self.word_forms = {
            forms[0]: {"noun": forms[0], "adjective": forms[1], "adverb": forms[2]} for _, forms in order
        }
        self.subdimension = {forms[0]: sub for sub, forms in order}
        self.dimension = {w: spec.dimension_of(s) for w, s in self.subdimension.items()}
        if spec.factors == "dimension":
            self.factors = list(spec.taxonomy)
            owner = [self.factors.index(self.dimension[w]) for w in self.word_list]
            phi = np.full((len(self.factors),) * 2, spec.factor_correlation)
        else:
            self.factors = subs
            owner = [subs.index(self.subdimension[w]) for w in self.word_list]
            dims = [spec.dimension_of(s) for s in subs]
            phi = np.array(
                [[spec.within_dimension_correlation if a == b else spec.factor_correlation for b in dims] for a in dims]
            )
        np.fill_diagonal(phi, 1.0)
        self.phi = phi
        n, k = len(self.word_list), len(self.factors)
        lam = rng.normal(0.0, spec.cross_loading_sd, (n, k))
        lam[np.arange(n), owner] = rng.uniform(*spec.loading_range, n)
        communality = np.einsum("ij,jk,ik->i", lam, phi, lam)
        too_big = communality > 0.95
        lam[too_big] *= np.sqrt(0.95 / communality[too_big])[:, None]
        self.loadings = lam
        self.owner = np.array(owner)
        self.communality = np.einsum("ij,jk,ik->i", lam, phi, lam)
        rank = np.arange(1, n + 1)
        self.frequency = np.clip(
            spec.answer_frequency_max * rank ** (-spec.zipf_exponent), spec.answer_frequency_min, 0.99
        )
        self.vocabulary_sd = math.sqrt(spec.vocabulary_icc / (1 - spec.vocabulary_icc))
        self.z = stats.norm.ppf(1 - self.frequency)
        self.thresholds = self.threshold(spec.reference_temperature, 1.0)
        self.word_index = {w: i for i, w in enumerate(self.word_list)}
        # non-values: Zipf-weighted, the first listed most used
        weights = 1.0 / np.arange(1, len(spec.non_values) + 1)
        self.non_value_weights = weights / weights.sum()

    # --- models ------------------------------------------------------------------------
    def _stage_sequence(self) -> list[str]:
        """Training stages in model order, interleaved so that every prefix keeps the proportions."""
        counts = self.spec.stage_counts
        total = sum(counts.values())
        used = dict.fromkeys(STAGES, 0)
        out = []
        for i in range(total):
            stage = max(STAGES, key=lambda s: (counts[s] * (i + 1) / total - used[s], counts[s]))
            used[stage] += 1
            out.append(stage)
        return out

    def _models(self) -> None:
        spec = self.spec
        n_words, k = self.loadings.shape
        sizes = (1.0, 3.0, 7.0, 8.0, 13.0, 34.0, 70.0, 180.0)
        families = {}
        for f in range(spec.n_families):
            frng = rng_for(spec.seed, "family", f)
            families[f] = {
                "name": f"Simulated {chr(ord('A') + f % 26)}{'' if f < 26 else f // 26}",
                "vocabulary": frng.normal(0.0, self.vocabulary_sd, n_words),
                "params_b": float(sizes[int(frng.integers(len(sizes)))]),
            }
        self.models: dict[str, SimModel] = {}
        for g, stage in enumerate(self._stage_sequence()):
            name = f"{spec.prefix}-m{g + 1:02d}"
            rng = rng_for(spec.seed, "model", name)
            fam = families[g % spec.n_families]
            share = spec.family_share
            vocabulary = math.sqrt(share) * fam["vocabulary"] + math.sqrt(1 - share) * rng.normal(
                0.0, self.vocabulary_sd, n_words
            )
            mean = rng.multivariate_normal(np.zeros(k), self.phi)
            style = spec.styles[stage]
            forms = {f: w * float(np.exp(rng.normal(0.0, 0.5))) for f, w in style.forms.items()}

            def around(rate: float, rng: np.random.Generator = rng) -> float:
                return float(min(1.0, rate * np.exp(rng.normal(0.0, 0.4))))

            rates = {
                r: around(getattr(style, r))
                for r in ("refusal", "refusal_then_values", "empty", "typo", "adjective", "adverb")
            }
            rates["filler"] = float(style.filler * np.exp(rng.normal(0.0, 0.4)))
            case = "title" if rng.random() < style.capitalise else CASE_STYLES[1 + int(rng.integers(2))]
            stances = {}
            for sub in spec.subdimensions:
                high = rng.random() < spec.high_share
                stances[sub] = ("high" if high else "low", float(rng.uniform(*spec.consistency)))
            self.models[name] = SimModel(
                name=name,
                index=g,
                family=fam["name"],
                stage=stage,
                api="completions" if stage == "pretrained" else "chat",
                params_b=fam["params_b"],
                verbosity=float(rng.normal(0.0, spec.verbosity_sd)),
                vocabulary=vocabulary,
                mean=mean,
                forms=forms,
                rates=rates,
                british=bool(rng.random() < style.british),
                case=case,
                period=bool(rng.random() < 0.5),
                number_style="." if rng.random() < 0.8 else ")",
                bullet=("-", "*", "•")[int(rng.integers(3))],
                oxford=bool(rng.random() < 0.5),
                explained=EXPLAINED_STYLES[int(rng.integers(len(EXPLAINED_STYLES)))],
                stances=stances,
            )

    @property
    def model_names(self) -> list[str]:
        return list(self.models)

    # --- respondents -------------------------------------------------------------------
    def noise(self, temperature: float, top_p: float) -> float:
        """The sd of an answer's noise at these decoding settings (0 at temperature 0)."""
        s = self.spec
        return s.answer_noise * (temperature / s.reference_temperature) * top_p**s.top_p_power

    def threshold(self, temperature: float, top_p: float) -> np.ndarray:
        """Each word's threshold at these decoding settings: scaled with the total latent sd, so that
        a word keeps its planted share of answers at every temperature (the temperature changes how
        varied a respondent's answers are, not how many words an answer names)."""
        sd = math.sqrt(1 + self.vocabulary_sd**2 + self.noise(temperature, top_p) ** 2)
        return sd * self.z

    def _respondent_key(self, model: str, temperature: float, top_p: float, seed: int | None) -> tuple:
        # greedy decoding (temperature 0) is the same whatever the seed
        return (model, float(temperature), float(top_p), None if temperature == 0 else seed)

    def respondent_state(self, model: str, temperature: float, top_p: float, seed: int | None) -> dict[str, np.ndarray]:
        """A respondent's factor scores and word propensities ``eta`` (drawn from its own seed)."""
        key = self._respondent_key(model, temperature, top_p, seed)
        cached = self._respondent_cache.get(key)
        if cached is None:
            m = self.models[model]
            rng = rng_for(self.spec.seed, "respondent", *key)
            icc = self.spec.value_icc
            own = rng.multivariate_normal(np.zeros(len(self.factors)), self.phi)
            scores = math.sqrt(icc) * m.mean + math.sqrt(1 - icc) * own
            unique = rng.standard_normal(len(self.word_list)) * np.sqrt(1 - self.communality)
            eta = self.loadings @ scores + m.vocabulary + unique
            cached = np.concatenate([scores, eta])
            self._respondent_cache[key] = cached
        k = len(self.factors)
        return {"scores": cached[:k], "eta": cached[k:]}

    # --- answering ---------------------------------------------------------------------
    def identify(self, ask: Ask) -> tuple[str, str | None]:
        """("elicitation", prompt id) or ("projective", stem id); the prompt id is None for a prompt we do not know."""
        text = ask.user
        if text in self._prompt_ids:
            return "elicitation", self._prompt_ids[text]
        for stem_text, stem_id in self._stem_ids.items():
            if f'"{stem_text}"' in text or text.strip() == stem_text:
                return "projective", stem_id
        for prompt_text, prompt_id in self._prompt_ids.items():  # inside a completions prompt template
            if prompt_text in text:
                return "elicitation", prompt_id
        return "elicitation", None

    def answer(self, ask: Ask) -> Answer:
        """The respondent's answer to one request (KeyError for a model not in the population)."""
        model = self.models[ask.model]
        kind, item = self.identify(ask)
        key = self._respondent_key(ask.model, ask.temperature, ask.top_p, ask.seed)
        system = ask.system
        if ask.api == "completions":  # a base model's prompt template carries the system text, if any
            known = [s for s in (self.spec.system_prompt, self.spec.instrument_system) if s and s in ask.user]
            system = known[0] if known else ""
        # the answer depends on the whole prompt (a reworded prompt gets other answers), not on max_tokens
        # or stop sequences, which only cut it: the same respondent says the same before the cut
        rng = rng_for(self.spec.seed, "answer", *key, kind, ask.user, system)
        if kind == "projective":
            full, truth = self._projective(model, ask, item, rng)
        else:
            full, truth = self._elicitation(model, ask, item, system, rng)
        pieces_text, spans = full.text(), full.spans()
        text = pieces_text
        stopped = False
        if ask.stop:
            text, stopped = tx.apply_stop(text, ask.stop)
        text, truncated = tx.truncate(text, ask.max_tokens)
        for index, entry in enumerate(truth.get("items", [])):
            entry["complete"] = any(end <= len(text) for _, end in spans.get(index, []))
            entry["said"] = len(spans.get(index, []))
        truth.update(respondent=ask.respondent.id, model=ask.model, truncated=truncated, stopped=stopped, text=text)
        if ask.api == "chat":
            prompt_tokens = tx.count_tokens(ask.system) + tx.count_tokens(ask.user) + 4 * (2 if ask.system else 1)
        else:
            prompt_tokens = tx.count_tokens(ask.user)
        answer = Answer(text, "length" if truncated else "stop", prompt_tokens, tx.count_tokens(text), truth)
        if ask.logprobs is not None:
            answer.logprobs = self._logprobs(text, ask, rng_for(self.spec.seed, "logprobs", *key, ask.user))
        return answer

    # elicitation -----------------------------------------------------------------------
    def chosen_words(self, model: SimModel, ask: Ask, rng: np.random.Generator) -> list[int]:
        """The value words an answer names, strongest first (at least one)."""
        eta = self.respondent_state(ask.model, ask.temperature, ask.top_p, ask.seed)["eta"]
        noise = rng.standard_normal(len(eta)) * self.noise(ask.temperature, ask.top_p)
        margin = eta + noise - self.threshold(ask.temperature, ask.top_p) - model.verbosity
        order = np.argsort(-margin, kind="stable")
        chosen = [int(j) for j in order if margin[j] > 0][: self.spec.max_value_words]
        return chosen or [int(order[0])]

    def _surface(self, model: SimModel, word: str, rng: np.random.Generator, temperature: float) -> dict[str, Any]:
        forms = self.word_forms[word]
        form = "noun"
        r = rng.random()
        if forms["adjective"] and r < model.rates["adjective"]:
            form = "adjective"
        elif forms["adverb"] and r > 1 - model.rates["adverb"]:
            form = "adverb"
        surface = forms[form]
        spelled = tx.british(surface, self.spec.british) if model.british else surface
        typo_rate = model.rates["typo"] * max(temperature / self.spec.reference_temperature, 0.2)
        typo = rng.random() < typo_rate
        final = tx.misspell(spelled, rng) if typo else spelled
        return {
            "word": word,
            "kind": "value",
            "form": form,
            "british": spelled != surface,
            "typo": final != spelled,
            "surface": final,
            "subdimension": self.subdimension[word],
        }

    def _form(self, model: SimModel, system: str, rng: np.random.Generator) -> str:
        weights = dict(model.forms)
        if system:
            for form, boost in self.spec.system_prompt_boost.items():
                if form in weights:
                    weights[form] *= boost
        names = sorted(weights)
        p = np.array([weights[n] for n in names])
        return names[int(rng.choice(len(names), p=p / p.sum()))]

    def _elicitation(
        self, model: SimModel, ask: Ask, prompt_id: str | None, system: str, rng: np.random.Generator
    ) -> tuple[tx.Pieces, dict[str, Any]]:
        chosen = self.chosen_words(model, ask, rng)
        rates = model.rates
        r = rng.random()
        if r < rates["empty"]:
            outcome = "empty"
        elif r < rates["empty"] + rates["refusal"]:
            outcome = "refusal"
        elif r < rates["empty"] + rates["refusal"] + rates["refusal_then_values"]:
            outcome = "refusal_then_values"
        else:
            outcome = "values"
        form = self._form(model, system, rng) if outcome == "values" else outcome
        if form == "junk":  # a base model's text about something else: no value words said
            outcome = "junk"
        items = [self._surface(model, self.word_list[j], rng, ask.temperature) for j in chosen]
        spread = max(ask.temperature / self.spec.reference_temperature, 0.25) ** 0.5
        n_fillers = int(rng.poisson(rates["filler"] * spread))
        taken: set[str] = set()
        for _ in range(n_fillers):
            w = self.spec.non_values[int(rng.choice(len(self.spec.non_values), p=self.non_value_weights))]
            if w in taken:
                continue
            taken.add(w)
            at = int(rng.integers(1, len(items) + 1))
            items.insert(
                at, {"word": w, "kind": "non_value", "form": "", "british": False, "typo": False, "surface": w}
            )
        truth: dict[str, Any] = {"kind": "elicitation", "prompt_id": prompt_id, "outcome": outcome, "form": form}
        truth["templates"] = []
        pieces = self._render(model, form, items, rng, ask.api, truth["templates"])
        if form in ("refusal", "empty", "junk"):
            items = []  # the words were not said
        truth["items"] = items
        return pieces, truth

    def _cased(self, model: SimModel, surface: str, position: int) -> str:
        if model.case == "title" or (model.case == "first" and position == 0):
            return tx.capitalise(surface)
        return surface

    def _pick(self, kind: str, rng: np.random.Generator) -> str:
        options = self.spec.templates[kind]
        return options[int(rng.integers(len(options)))]

    def _template(self, kind: str, rng: np.random.Generator, used: list[str]) -> str:
        """A template of the vocabulary file, remembered in ``used`` for the answer's truth."""
        chosen = self._pick(kind, rng)
        used.append(chosen)
        return chosen

    def _render(
        self, model: SimModel, form: str, items: list[dict], rng: np.random.Generator, api: str, used: list[str]
    ) -> tx.Pieces:
        p = tx.Pieces()
        if api == "completions":
            p.add(" ")  # a base model continues after "Answer:"
        surfaces = [it["surface"] for it in items]
        idx = list(range(len(items)))
        if form == "empty":
            return p.add(("", "\n", " ", "\n\n")[int(rng.integers(4))])
        if form == "refusal":
            return p.add(self._template("refusal", rng, used))
        if form in ("comma", "repeated", "continuation"):
            for k, (s, i) in enumerate(zip(surfaces, idx, strict=True)):
                times = int(rng.integers(1, 4)) if form == "repeated" else 1
                for t in range(times):
                    if k or t:
                        p.add(", ")
                    p.add(self._cased(model, s, k) if form != "continuation" else s, i)
            if form == "continuation":
                p.add(f"\nQuestion: {self._pick('continuation', rng)}\nAnswer:")
            elif model.period:
                p.add(".")
            return p
        if form == "comma_and":
            cased = [self._cased(model, s, k) for k, s in enumerate(surfaces)]
            tx.join_list(p, cased, idx, "and", model.oxford)
            return p.add("." if model.period else "")
        if form in ("numbered", "bullets", "explained"):
            if rng.random() < 0.5:
                p.add(self._pick("lead_in", rng) + ("\n\n" if rng.random() < 0.5 else "\n"))
            sep = "\n\n" if form == "explained" and rng.random() < 0.5 else "\n"
            for k, (s, i) in enumerate(zip(surfaces, idx, strict=True)):
                if k:
                    p.add(sep)
                marker = f"{k + 1}{model.number_style} " if form != "bullets" else f"{model.bullet} "
                if form != "explained":
                    p.add(marker).add(self._cased(model, s, k), i)
                    continue
                explanation = self._pick("explanation", rng)
                if model.explained == "bold_colon":
                    p.add(marker + "**").add(tx.capitalise(s), i).add("**: " + explanation)
                elif model.explained == "dash":
                    p.add(marker).add(tx.capitalise(s), i).add(" - " + explanation)
                else:
                    p.add(tx.capitalise(s), i).add(": " + explanation)
            return p
        if form == "label":
            p.add(LABELS[int(rng.integers(len(LABELS)))])
            for k, (s, i) in enumerate(zip(surfaces, idx, strict=True)):
                if k:
                    p.add(", ")
                p.add(s, i)
            return p.add("." if model.period else "")
        if form == "junk":
            for line in range(int(rng.integers(2, 5))):
                if line:
                    p.add("\n")
                p.add(f"{line + 1}. " + self._pick("junk", rng).format(n=int(rng.integers(2, 200))))
            return p
        # prose forms: sentence, prose, refusal_then_values
        if form == "prose":
            p.add(self._template("prose_opening", rng, used) + " ")
        template = self._pick("refusal_then_values" if form == "refusal_then_values" else "sentence", rng)
        used.insert(0, template)  # the template holding the words comes first
        head, _, tail = template.partition("{list}") if "{list}" in template else template.partition("{List}")
        capital = "{List}" in template
        p.add(head)
        words = [tx.capitalise(s) if (capital and k == 0) else s for k, s in enumerate(surfaces)]
        tx.join_list(p, words, idx, "and", model.oxford)
        p.add(tail)
        if form == "prose":
            p.add(" " + self._template("prose_closing", rng, used))
        return p

    # projective ------------------------------------------------------------------------
    def _projective(
        self, model: SimModel, ask: Ask, stem_id: str, rng: np.random.Generator
    ) -> tuple[tx.Pieces, dict[str, Any]]:
        spec = self.spec
        stem = spec.stems[stem_id]
        data = spec.completions
        subs = spec.subdimensions
        if stem["kind"] == "targeted":
            sub = stem["targets"][0]
        else:
            sub = subs[int(rng.integers(len(subs)))]
        planted, consistency = model.stances[sub]
        neutral = spec.neutral * max(ask.temperature / spec.reference_temperature, 0.25)
        if rng.random() < neutral:
            shown = "neutral"
        else:
            other = "low" if planted == "high" else "high"
            shown = planted if rng.random() < consistency else other
        if stem["kind"] == "targeted":
            options = data["targeted"][stem_id][shown]
            body = options[int(rng.integers(len(options)))]
        elif shown == "neutral":
            options = data["classic_neutral"][stem_id]
            body = options[int(rng.integers(len(options)))]
        else:
            other = "low" if shown == "high" else "high"
            own_v, own_g = self._phrase(sub, shown, rng)
            other_v, other_g = self._phrase(sub, other, rng)
            frame = data["classic"][stem_id][shown]
            body = frame.format(V_own=own_v, G_own=own_g, V_other=other_v, G_other=other_g)
        head = stem["text"].rstrip(".… ").strip()
        refusal = rng.random() < spec.projective_refusal
        repeat = rng.random() < spec.repeat_stem
        if refusal:
            opening = data["refusal"][int(rng.integers(len(data["refusal"])))]
            text = f"{opening} {head[0].lower()}{head[1:]} {body}"
        elif repeat:
            text = f"{head} {body}"
        else:
            text = ("..." if rng.random() < 0.2 else "") + body
        if rng.random() < 0.1:
            text = f'"{text}"'
        pieces = tx.Pieces()
        if ask.api == "completions":
            pieces.add(" ")
        pieces.add(text)
        if ask.api == "completions":
            pieces.add(f"\nQuestion: {self._pick('continuation', rng)}\nAnswer:")
        truth = {
            "kind": "projective",
            "stem_id": stem_id,
            "subdimension": sub,
            "planted": planted,
            "shown": shown,
            "refusal": refusal,
            "items": [],
        }
        return pieces, truth

    def _phrase(self, sub: str, stance: str, rng: np.random.Generator) -> tuple[str, str]:
        options = self.spec.completions["phrases"][sub][stance]
        verb, _, gerund = options[int(rng.integers(len(options)))].partition("||")
        return verb.strip(), gerund.strip()

    # log-probabilities -----------------------------------------------------------------
    @cached_property
    def _alternatives(self) -> list[str]:
        pool = {tx.tokens(" " + w)[0] for w in self.word_list} | {",", ".", "\n", " and", " I", " the", " my"}
        return sorted(pool)

    def _logprobs(self, text: str, ask: Ask, rng: np.random.Generator) -> dict[str, Any]:
        """OpenAI-shaped log-probabilities of the answer's tokens: chat ``content`` or completions ``tokens``.

        The chosen token's probability is high at low temperature and lower at high temperature; the
        alternatives share the rest, geometrically. Plausible numbers, not a language model's.
        """
        toks = tx.tokens(text)
        n_top = max(0, min(int(ask.logprobs or 0), 20))
        pool = self._alternatives
        content = []
        for tok in toks:
            sharp = 4.0 / (ask.temperature + 0.25)
            p_chosen = float(1 / (1 + np.exp(-rng.normal(sharp, 1.0))))
            alts = [pool[int(i)] for i in rng.choice(len(pool), size=min(n_top, len(pool)), replace=False)]
            alts = [a for a in alts if a != tok][: max(0, n_top - 1)]
            rest = 1 - p_chosen
            top = [(tok, p_chosen)] + [(a, rest * 0.5 ** (i + 1)) for i, a in enumerate(alts)]
            top.sort(key=lambda tp: -tp[1])
            content.append((tok, math.log(p_chosen), [(t, math.log(max(p, 1e-12))) for t, p in top[:n_top]]))
        if ask.api == "chat":
            return {
                "content": [
                    {
                        "token": tok,
                        "logprob": lp,
                        "bytes": list(tok.encode("utf-8")),
                        "top_logprobs": [{"token": t, "logprob": v, "bytes": list(t.encode("utf-8"))} for t, v in top],
                    }
                    for tok, lp, top in content
                ],
                "refusal": None,
            }
        offsets, at = [], 0
        for tok in toks:
            offsets.append(at)
            at += len(tok)
        return {
            "tokens": toks,
            "token_logprobs": [lp for _, lp, _ in content],
            "top_logprobs": [dict(top) for _, _, top in content],
            "text_offset": offsets,
        }

    # --- the truth as tables -----------------------------------------------------------
    def words_table(self) -> pd.DataFrame:
        """Each planted value word: sub-dimension, dimension, planted factor and loadings, frequency, forms."""
        rows = []
        for i, w in enumerate(self.word_list):
            forms = self.word_forms[w]
            rows.append(
                {
                    "word": w,
                    "subdimension": self.subdimension[w],
                    "dimension": self.dimension[w],
                    "factor": self.factors[self.owner[i]],
                    "rank": i + 1,
                    "answer_frequency": float(self.frequency[i]),
                    "threshold_reference": float(self.thresholds[i]),
                    **{f"loading_{f}": float(self.loadings[i, k]) for k, f in enumerate(self.factors)},
                    "adjective": forms["adjective"],
                    "adverb": forms["adverb"],
                }
            )
        return pd.DataFrame(rows)

    def variants_table(self) -> pd.DataFrame:
        """Every surface form a respondent may use for a planted word (misspellings aside) and its word."""
        rows = []
        for w in self.word_list:
            for form, surface in self.word_forms[w].items():
                if not surface:
                    continue
                rows.append({"surface": surface, "word": w, "variant": form, "british": False})
                brit = tx.british(surface, self.spec.british)
                if brit != surface:
                    rows.append({"surface": brit, "word": w, "variant": form, "british": True})
        return pd.DataFrame(rows)

    def non_values_table(self) -> pd.DataFrame:
        return pd.DataFrame({"word": list(self.spec.non_values), "weight": self.non_value_weights})

    def models_table(self) -> pd.DataFrame:
        rows = []
        for m in self.models.values():
            rows.append(
                {
                    "model": m.name,
                    "family": m.family,
                    "training_stage": m.stage,
                    "api": m.api,
                    "params_b": m.params_b,
                    "verbosity": m.verbosity,
                    "british": m.british,
                    "case": m.case,
                    **{f"rate_{k}": v for k, v in m.rates.items()},
                    **{f"form_{k}": v for k, v in sorted(m.forms.items())},
                    **{f"mean_{f}": float(v) for f, v in zip(self.factors, m.mean, strict=True)},
                }
            )
        return pd.DataFrame(rows)

    def vocabulary_table(self) -> pd.DataFrame:
        """Models x words: each model's vocabulary effect v_gj."""
        return pd.DataFrame(
            np.array([m.vocabulary for m in self.models.values()]), index=self.model_names, columns=self.word_list
        ).rename_axis("model")

    def stances_table(self) -> pd.DataFrame:
        """Each model's planted stance per sub-dimension, its consistency, and the expected share of high completions."""
        rows = []
        for m in self.models.values():
            for sub, (stance, consistency) in m.stances.items():
                share = consistency if stance == "high" else 1 - consistency
                rows.append(
                    {
                        "model": m.name,
                        "subdimension": sub,
                        "stance": stance,
                        "consistency": consistency,
                        "expected_high_share": share,
                    }
                )
        return pd.DataFrame(rows)

    def respondents_table(self, respondents: list[Respondent]) -> pd.DataFrame:
        """Each respondent's factor scores and answer noise; with ``propensity_table`` its word propensities."""
        rows = []
        for r in respondents:
            state = self.respondent_state(r.model, r.temperature, r.top_p, r.seed)
            rows.append(
                {
                    "respondent": r.id,
                    "model": r.model,
                    "temperature": r.temperature,
                    "top_p": r.top_p,
                    "seed": r.seed,
                    "answer_noise": self.noise(r.temperature, r.top_p),
                    **{f"score_{f}": float(v) for f, v in zip(self.factors, state["scores"], strict=True)},
                }
            )
        return pd.DataFrame(rows)

    def propensity_table(self, respondents: list[Respondent]) -> pd.DataFrame:
        """Respondents x words: ``eta_j - threshold_j - verbosity`` at the respondent's decoding settings
        (a word is named in an answer when this plus the answer's noise is above 0)."""
        rows = {}
        for r in respondents:
            eta = self.respondent_state(r.model, r.temperature, r.top_p, r.seed)["eta"]
            rows[r.id] = eta - self.threshold(r.temperature, r.top_p) - self.models[r.model].verbosity
        return pd.DataFrame.from_dict(rows, orient="index", columns=self.word_list).rename_axis("respondent")

    def write_truth(self, folder: str | Path, respondents: list[Respondent] | None = None) -> dict[str, Path]:
        """Write the planted truth as files in ``folder`` (CSV, and the settings as JSON); their paths."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tables = {
            "words": self.words_table(),
            "variants": self.variants_table(),
            "non_values": self.non_values_table(),
            "factor_correlations": pd.DataFrame(self.phi, index=self.factors, columns=self.factors).rename_axis(
                "factor"
            ),
            "models": self.models_table(),
            "model_vocabulary": self.vocabulary_table(),
            "stances": self.stances_table(),
        }
        if respondents:
            tables["respondents"] = self.respondents_table(respondents)
            tables["respondent_propensity"] = self.propensity_table(respondents)
        out = {}
        for name, table in tables.items():
            path = folder / f"{name}.csv"
            keep_index = table.index.name is not None
            table.to_csv(path, index=keep_index, lineterminator="\n", float_format="%.6g")
            out[name] = path
        about = {
            "population": str(self.spec.path),
            "version": self.spec.version,
            "seed": self.spec.seed,
            "factors": self.factors,
            "models": len(self.models),
            "value_words": len(self.word_list),
        }
        path = folder / "population.json"
        path.write_text(json.dumps(about, indent=1) + "\n", encoding="utf-8")
        out["population"] = path
        return out
