"""Lexicon cleaning: from raw descriptors to one canonical form per value concept.

Steps, each counted in the cleaning funnel (the paper reports "40k+ obtained words ->
190+ unique words"; every rule below is our choice, as the paper does not publish its own):

1. ``normalise``: Unicode NFKC, lower case, quotes and stray punctuation removed, spaces
   collapsed, hyphen spacing unified.
2. ``drop_non_values``: numbers, single letters, over-long phrases and the reviewable list
   ``configs/lexicon/non_values.yaml`` (the instrument echoed back, fillers, model names,
   situations and things such as "circumstances"; a listed word's plural too; words of the
   respondent's own prompt repeated back, such as "practical" for "moral and practical priorities").
3. ``spelling``: one spelling per word (``configs/lexicon/variants.yaml``; American spelling):
   whole terms, then each word of a term ("ethical behaviour" -> "ethical behavior"), then British
   patterns (rigour -> rigor) when the respelled word occurs in the data.
4. ``misspellings``: a rare word that is a typing slip (two neighbouring letters swapped, or a
   letter dropped or added inside the word; not the first letter) of a word used by many times
   more respondents is that word
   (``LexiconSettings.misspelling_min_length`` and ``misspelling_ratio``; every correction is
   listed in the merges).
5. ``families``: morphological families joined (honest/honesty, altruism/altruistic): explicit
   pairs from ``variants.yaml``, equal Snowball stems of every word of the term, and the
   derivational suffixes of ``variants.yaml`` (democracy ~ democratic, honestly ~ honest), joined
   transitively. Where the data has both an -ive and an -ible/-able word of one stem
   (responsive, responsible), they stay apart, and so do the words ``variants.yaml`` keeps apart
   from their stem (``stem_apart``: personality and personalization are not personal). The form shown is the family's most frequent
   surface form (ties: shorter, then alphabetical).
6. ``near_synonyms`` (optional): families whose embeddings have cosine similarity at or
   above a threshold are merged into the more frequent one; every merge is listed.
7. ``frequency``: keep terms used by at least ``min_respondents`` respondents and
   ``min_models`` models.
"""

# Over 600 lines: notebook 02's cleaning funnel: each step (normalise, non-values, spelling, misspellings,
# families, frequency) is short and counted in the same funnel table.

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import snowballstemmer
import yaml

from .core import paths
from .core.schema import Count, Range

LEXICON_CONFIG = paths.CONFIGS / "lexicon"
MAX_TERM_WORDS = 3
MIN_BASE = 3  # letters a word keeps before a derivational suffix ("ism" alone is no word)
MIN_PATTERN_WORD = 5  # letters of a word the British spelling patterns apply to ("hour" is no "hor")


@dataclass(frozen=True)
class LexiconSettings:
    """Notebook 02: from raw descriptors to value words (run-file section ``lexicon``).

    Defined here, next to the cleaning that consumes it; ``valuelex.settings`` composes it into a run's
    settings (``RunSettings.lexicon``) and checks each field against its type (:mod:`valuelex.core.schema`).

    Every default is our choice (the paper publishes no cleaning rule); the word lists and suffix rules
    are reviewable data in ``configs/lexicon/`` (``non_values.yaml``, ``variants.yaml``). The misspelling
    step is conservative: only typing slips (two neighbouring letters swapped, one letter dropped or
    added inside the word) of a word with ``misspelling_ratio`` times the respondents, because a changed
    letter makes another word too often (humidity/humility, living/loving in the local panel's answers).
    """

    min_respondents: Count = 5  # a word must be used by at least this many respondents
    min_models: Count = 1  # ... and by at least this many models
    synonym_threshold: Annotated[float, Range(0, 1, low_open=True)] | None = (
        None  # merge near-synonyms above this cosine
    )
    misspelling_min_length: Annotated[int, Range(4)] | None = (
        6  # a rare word this long, a typing slip of a far more used word, is that word (None: never correct)
    )
    misspelling_ratio: Annotated[float, Range(1, low_open=True)] = (
        5.0  # ... when that word has this many times its respondents
    )
    top_n: Count = 30  # words shown in the top-words figure

    def invalid(self) -> list[tuple[tuple[str, ...], str]]:
        return []


@dataclass
class LexiconRules:
    """The reviewable word lists (data files under ``configs/lexicon``)."""

    non_values: set[str]
    function_words: set[str]
    spelling: dict[str, str]
    families: dict[str, str]
    prompt_echoes: set[str] = field(default_factory=set)
    spelling_patterns: list[tuple[re.Pattern, str]] = field(default_factory=list)
    derivations: dict[str, tuple[str, ...]] = field(default_factory=dict)
    not_adverbs: set[str] = field(default_factory=set)
    stem_apart: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, folder: Path = LEXICON_CONFIG) -> LexiconRules:
        nv = yaml.safe_load((folder / "non_values.yaml").read_text(encoding="utf-8"))
        var = yaml.safe_load((folder / "variants.yaml").read_text(encoding="utf-8"))
        function_words = {normalise(w) for w in nv.pop("function_words", [])}
        prompt_echoes = {normalise(w) for w in nv.pop("prompt_echoes", [])}
        non_values = {normalise(w) for group in nv.values() for w in group}
        return cls(
            non_values=non_values,
            function_words=function_words,
            spelling={normalise(k): normalise(v) for k, v in var.get("spelling", {}).items()},
            families={normalise(k): normalise(v) for k, v in var.get("families", {}).items()},
            prompt_echoes=prompt_echoes,
            spelling_patterns=[(re.compile(p), r) for p, r in var.get("spelling_patterns", [])],
            derivations={k: tuple(v) for k, v in var.get("derivations", {}).items()},
            not_adverbs={normalise(w) for w in var.get("not_adverbs", [])},
            stem_apart={normalise(k): normalise(v) for k, v in (var.get("stem_apart") or {}).items()},
        )


# 1. normalisation ----------------------------------------------------------------------
_QUOTES = re.compile(r"[\"“”‘’'`´]")
_NON_WORD = re.compile(r"[^a-z0-9\- ]+")
_HYPHEN = re.compile(r"\s*-\s*")


def normalise(raw: str) -> str:
    """Lower case, no quotes or stray punctuation, single spaces, ``a - b`` -> ``a-b``."""
    text = unicodedata.normalize("NFKC", str(raw)).lower()
    text = _QUOTES.sub("", text)
    text = text.replace("_", " ").replace("–", "-").replace("—", "-")
    text = _NON_WORD.sub(" ", text)
    text = _HYPHEN.sub("-", text)
    return re.sub(r"\s+", " ", text).strip(" -")


def non_value_reason(term: str, rules: LexiconRules, prompt: str = "") -> str | None:
    """Why a normalised term is not a value descriptor, or None if it may be one.

    ``prompt`` is the normalised prompt the respondent answered: a multi-word term made only
    of the prompt's own words ("practical priorities") is the instrument echoed back.
    """
    if not term:
        return "empty"
    if any(ch.isdigit() for ch in term):
        return "number"
    if len(term.replace(" ", "").replace("-", "")) < 3:
        return "too short"
    if len(term.split()) > MAX_TERM_WORDS:
        return "too long"
    if term in rules.non_values or _plural_of(term, rules.non_values):
        return "non-value list"
    words = term.split()
    if words[0] in rules.function_words or words[-1] in rules.function_words:
        return "sentence fragment"
    if prompt and (len(words) > 1 or term in rules.prompt_echoes) and set(words) <= set(prompt.split()):
        return "echo of the prompt"
    return None


def _plural_of(term: str, words: set[str]) -> bool:
    """Whether a term is the plural of one of ``words`` ("answers" of "answer", "keywords" of "keyword")."""
    return (term.endswith("s") and term[:-1] in words) or (term.endswith("es") and term[:-2] in words)


# 3. spelling ---------------------------------------------------------------------------------
_WORD_SPLIT = re.compile(r"([ -])")


def _words(term: str) -> list[str]:
    return [w for w in re.split(r"[ -]", term) if w]


def spell(term: str, rules: LexiconRules, vocabulary: set[str] = frozenset()) -> str:
    """One spelling for a normalised term: the whole-term map, then each word's, then the British
    patterns for a word whose respelling is in ``vocabulary`` (the words the data uses)."""
    term = rules.spelling.get(term, term)
    parts = _WORD_SPLIT.split(term)
    for i in range(0, len(parts), 2):
        word = rules.spelling.get(parts[i], parts[i])
        if word == parts[i] and len(word) >= MIN_PATTERN_WORD:
            for pattern, replacement in rules.spelling_patterns:
                respelled = pattern.sub(replacement, word)
                if respelled != word:
                    if respelled in vocabulary:
                        word = respelled
                    break
        parts[i] = word
    return "".join(parts)


# 4. misspellings --------------------------------------------------------------------------------
def typo_of(word: str, target: str) -> bool:
    """Whether ``word`` is ``target`` with one typing slip: two neighbouring letters swapped
    ("integirty"), or one letter dropped or added inside the word ("kindnss", "honnesty").

    Not a letter changed, nor added or dropped at the end: those make another word too often
    (humidity/humility, living/loving, valued/values in our own data; honest/honesty, moral/morale).
    """
    if word == target or abs(len(word) - len(target)) > 1:
        return False
    short, long = sorted((word, target), key=len)
    i = 0
    while i < len(short) and short[i] == long[i]:
        i += 1
    if len(short) < len(long):
        return i < len(short) and short[i:] == long[i + 1 :]
    return (
        i + 1 < len(short) and short[i] == long[i + 1] and short[i + 1] == long[i] and short[i + 2 :] == long[i + 2 :]
    )


def misspelling_map(word_respondents: dict[str, int], settings: LexiconSettings) -> dict[str, str]:
    """Rare word -> the word it misspells (see the module docstring, step 4).

    A word of at least ``misspelling_min_length`` letters that fewer than ``min_respondents``
    respondents use is read as a misspelling of a word it is a typing slip of (``typo_of``), with
    the same first letter, that ``misspelling_ratio`` times as many respondents use; of several,
    the most used (then alphabetical). Words are compared whole (split at spaces and hyphens),
    after spelling.
    """
    if settings.misspelling_min_length is None:
        return {}
    n = settings.misspelling_min_length
    by_deletion: dict[str, list[str]] = {}
    for word in word_respondents:
        if len(word) >= n - 1:
            for key in {word} | {word[:i] + word[i + 1 :] for i in range(1, len(word))}:
                by_deletion.setdefault(key, []).append(word)
    out: dict[str, str] = {}
    for word, users in word_respondents.items():
        if len(word) < n or users >= settings.min_respondents:
            continue
        keys = {word} | {word[:i] + word[i + 1 :] for i in range(1, len(word))}
        targets = {
            t
            for key in keys
            for t in by_deletion.get(key, ())
            if t[0] == word[0] and word_respondents[t] >= settings.misspelling_ratio * users and typo_of(word, t)
        }
        if targets:
            out[word] = min(targets, key=lambda t: (-word_respondents[t], t))
    return out


def _respell_words(term: str, mapping: dict[str, str]) -> str:
    parts = _WORD_SPLIT.split(term)
    return "".join(mapping.get(p, p) if i % 2 == 0 else p for i, p in enumerate(parts))


# 4. families -----------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _stemmer() -> snowballstemmer.stemmer:
    return snowballstemmer.stemmer("english")


def family_key(term: str, rules: LexiconRules) -> str:
    """Key of a term from its own words alone (explicit pairs, then Snowball stems); ``Families``
    joins these keys further with what the data holds."""
    term = rules.families.get(term, term)
    return " ".join(_stemmer().stemWord(w) for w in _words(term))


_IVE = re.compile(r"iv(?:e|es|ely|eness|ity|ities)$")
_BLE = re.compile(r"[ai]b(?:le|les|ly|ility|ilities|leness)$")


class Families:
    """Morphological families of the words of a set of terms (module docstring, step 5).

    Every word has a key: the Snowball stem of the word, or of its partner when ``variants.yaml``
    pairs it (friendly -> friendliness, so that it does not join "friends" by its stem), and, for a
    stem the data uses both with -ive and with -ible/-able (responsive, responsible), the suffix too.
    Keys are joined (union-find) by the derivations of ``variants.yaml``: a word ending in a suffix
    joins the word each replacement makes, when that word is a single-word term of the data or a word
    ``variants.yaml`` pairs (factuality -> factual -> facts; democracy -> democratic), and two words
    that make the same word join (happily, happiness -> happy). A word ``variants.yaml`` keeps apart
    (``stem_apart``: personality, personalization are not personal) has the family named there, and no
    derivation. A term's family is the joined keys of its words, in order.
    """

    def __init__(self, terms: Sequence[str], rules: LexiconRules) -> None:
        self.rules = rules
        terms = [rules.families.get(t, t) for t in terms]
        words = {w for t in terms for w in _words(t)}
        stems: dict[str, set[str]] = {}
        for w in words:
            w = rules.families.get(w, w)
            kind = "ive" if _IVE.search(w) else "ble" if _BLE.search(w) else ""
            stems.setdefault(_stemmer().stemWord(w), set()).add(kind)
        self._split = {stem for stem, kinds in stems.items() if {"ive", "ble"} <= kinds}
        self._parent: dict[str, str] = {}
        # words known to exist: the data's single-word terms and the words variants.yaml pairs
        known = {t for t in terms if len(_words(t)) == 1} | set(rules.families) | set(rules.families.values())
        for w in sorted(words - set(rules.stem_apart)):
            for candidate in self.derived(w):
                # two words derived from one word join even when the data never says it (happily,
                # happiness ~ happy); a word the data or the pairs know joins its family
                self._union(self._key(w), "#" + candidate)
                if candidate in known:
                    self._union(self._key(w), self._key(candidate))

    def derived(self, word: str) -> list[str]:
        """The words ``word`` may be derived from or into by the suffixes of ``variants.yaml``."""
        out = []
        for suffix, replacements in self.rules.derivations.items():
            base = word[: -len(suffix)]
            if word.endswith(suffix) and len(base) >= MIN_BASE:
                if suffix.endswith("ly") and word in self.rules.not_adverbs:
                    continue
                out += [base + r for r in replacements]
        return out

    def _key(self, word: str) -> str:
        if word in self.rules.stem_apart:
            return "=" + self.rules.stem_apart[word]
        word = self.rules.families.get(word, word)
        stem = _stemmer().stemWord(word)
        if stem in self._split:
            return stem + ("~ive" if _IVE.search(word) else "~ble" if _BLE.search(word) else "")
        return stem

    def _find(self, key: str) -> str:
        while self._parent.get(key, key) != key:
            key = self._parent[key]
        return key

    def _union(self, a: str, b: str) -> None:
        a, b = self._find(a), self._find(b)
        if a != b:
            if a.startswith("#") or (not b.startswith("#") and a > b):
                a, b = b, a  # a word's key, the smaller, stands for both: any order, same result
            self._parent[b] = a

    def key(self, term: str) -> str:
        """The family of a (spelled) term."""
        return " ".join(self._find(self._key(w)) for w in _words(self.rules.families.get(term, term)))


def choose_form(counts: Counter) -> str:
    """The form shown for a family: most frequent, then shorter, then alphabetical."""
    return sorted(counts.items(), key=lambda kv: (-kv[1], len(kv[0]), kv[0]))[0][0]


# the pipeline ----------------------------------------------------------------------------
@dataclass
class LexiconResult:
    """Everything the cleaning produced."""

    descriptors: pd.DataFrame  # one row per raw descriptor, with its canonical term or why it was dropped
    lexicon: pd.DataFrame  # word, count, respondents, models, example_raws
    funnel: pd.DataFrame  # step, descriptors, unique terms
    merges: pd.DataFrame  # surface form -> canonical, and the rule that joined them
    params: dict = field(default_factory=dict)


def clean(
    descriptors: pd.DataFrame,
    *,
    rules: LexiconRules | None = None,
    prompts: dict[str, str] | None = None,
    settings: LexiconSettings | None = None,
    embed: Callable[[Sequence[str]], np.ndarray] | None = None,
) -> LexiconResult:
    """Run the cleaning steps on the long descriptor table (output of ``parse_responses``).

    ``prompts`` maps prompt id to prompt text, for the echo rule (see ``non_value_reason``);
    ``settings``: the run's lexicon settings (the frequency rule, misspellings, near-synonyms).
    """
    rules = rules or LexiconRules.load()
    settings = settings or LexiconSettings()
    min_respondents, min_models = settings.min_respondents, settings.min_models
    synonym_threshold = settings.synonym_threshold
    prompt_norm = {k: normalise(v) for k, v in (prompts or {}).items()}
    d = descriptors.copy()
    funnel = [("raw descriptors", len(d), d["raw"].nunique())]

    d["normalised"] = [normalise(r) for r in d["raw"]]
    funnel.append(("normalised (case, punctuation, spacing)", len(d), d["normalised"].nunique()))

    d["dropped"] = [
        non_value_reason(t, rules, prompt_norm.get(p, "")) or ""
        for t, p in zip(d["normalised"], d["prompt_id"], strict=True)
    ]
    kept = d["dropped"] == ""
    funnel.append(("non-value words removed", int(kept.sum()), d.loc[kept, "normalised"].nunique()))

    vocabulary = {w for t in d.loc[kept, "normalised"].unique() for w in _words(t)}
    spelled = {t: spell(t, rules, vocabulary) for t in d["normalised"].unique()}
    d["spelled"] = d["normalised"].map(spelled)
    funnel.append(("spelling variants unified", int(kept.sum()), d.loc[kept, "spelled"].nunique()))

    uses = d.loc[kept, ["spelled", "respondent"]].drop_duplicates()
    word_users = (
        pd.DataFrame([(w, r) for t, r in zip(uses["spelled"], uses["respondent"], strict=True) for w in _words(t)])
        .drop_duplicates()
        .groupby(0)
        .size()
        .to_dict()
        if len(uses)
        else {}
    )
    corrections = misspelling_map(word_users, settings)
    respelled = {t: _respell_words(t, corrections) for t in d["spelled"].unique()}
    d["corrected"] = d["spelled"].map(respelled)
    funnel.append(("misspellings corrected", int(kept.sum()), d.loc[kept, "corrected"].nunique()))

    families = Families(sorted(d.loc[kept, "corrected"].unique()), rules)
    family_of = {t: families.key(t) for t in d["corrected"].unique()}
    d["family"] = d["corrected"].map(family_of)
    forms = d[kept].groupby("family")["corrected"].agg(Counter)
    family_form = {fam: choose_form(c) for fam, c in forms.items()}
    d["canonical"] = d["family"].map(family_form)
    funnel.append(("morphological families joined", int(kept.sum()), d.loc[kept, "canonical"].nunique()))

    merges = [{"surface": w, "canonical": t, "rule": "misspelling"} for w, t in sorted(corrections.items())] + [
        {"surface": s, "canonical": family_form[f], "rule": "family"}
        for f, c in forms.items()
        for s in sorted(c)
        if s != family_form[f]
    ]
    if synonym_threshold is not None:
        if embed is None:
            raise ValueError("synonym_threshold needs an embed function (e.g. valuelex.semantic.embed_words)")
        synonym_map = near_synonym_map(d.loc[kept, "canonical"].value_counts(), embed, synonym_threshold)
        for term, target in sorted(synonym_map.items()):
            merges.append({"surface": term, "canonical": target, "rule": f"cosine>={synonym_threshold:g}"})
        d["canonical"] = d["canonical"].map(lambda t: synonym_map.get(t, t))
        funnel.append(
            (
                f"near-synonyms merged (cosine >= {synonym_threshold:g})",
                int(kept.sum()),
                d.loc[kept, "canonical"].nunique(),
            )
        )

    usage = (
        d[kept]
        .groupby("canonical")
        .agg(count=("raw", "size"), respondents=("respondent", "nunique"), models=("model", "nunique"))
    )
    frequent = usage[(usage["respondents"] >= min_respondents) & (usage["models"] >= min_models)].index
    rare = kept & ~d["canonical"].isin(frequent)
    d.loc[rare, "dropped"] = f"fewer than {min_respondents} respondents or {min_models} models"
    d.loc[d["dropped"] != "", "canonical"] = None
    final = d["dropped"] == ""
    funnel.append(
        (
            f"frequency filter (>= {min_respondents} respondents, >= {min_models} models)",
            int(final.sum()),
            d.loc[final, "canonical"].nunique(),
        )
    )

    lex = (
        d[final]
        .groupby("canonical")
        .agg(
            count=("raw", "size"),
            respondents=("respondent", "nunique"),
            models=("model", "nunique"),
            example_raws=("raw", lambda s: "; ".join(sorted(set(s), key=lambda x: (x.lower(), x))[:5])),
        )
    )
    lex = lex.reset_index().rename(columns={"canonical": "word"})
    lex = lex.sort_values(["count", "word"], ascending=[False, True]).reset_index(drop=True)
    funnel_df = pd.DataFrame(funnel, columns=["step", "descriptors", "unique_terms"])
    d = d.drop(columns=["spelled", "corrected", "family"])
    params = {"min_respondents": min_respondents, "min_models": min_models, "synonym_threshold": synonym_threshold}
    return LexiconResult(d, lex, funnel_df, pd.DataFrame(merges, columns=["surface", "canonical", "rule"]), params)


def near_synonym_map(
    counts: pd.Series, embed: Callable[[Sequence[str]], np.ndarray], threshold: float
) -> dict[str, str]:
    """Greedy merge, most frequent first: each term joins the most similar more-frequent kept term."""
    terms = sorted(counts.index, key=lambda t: (-counts[t], t))
    vectors = np.asarray(embed(terms), dtype=float)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    kept_idx: list[int] = []
    mapping: dict[str, str] = {}
    for i, term in enumerate(terms):
        if kept_idx:
            sims = vectors[kept_idx] @ vectors[i]
            j = int(np.argmax(sims))
            if sims[j] >= threshold:
                mapping[term] = terms[kept_idx[j]]
                continue
        kept_idx.append(i)
    return mapping


# incidence matrices ------------------------------------------------------------------------
def incidence_matrix(descriptors: pd.DataFrame, unit: str = "respondent", coding: str = "binary") -> pd.DataFrame:
    """Units x words. ``unit``: respondent or response; ``coding``: binary (used at all) or counts.

    For respondents, counts are the number of responses (prompts x samples) that used the word.
    Every unit that was asked appears, also those whose answers gave no lexicon word.
    """
    if unit not in ("respondent", "response"):
        raise ValueError(f"unit must be respondent or response, got {unit!r}")
    if coding not in ("binary", "counts"):
        raise ValueError(f"coding must be binary or counts, got {coding!r}")
    d = descriptors.copy()
    if unit == "response":
        d["unit"] = d["respondent"] + "|" + d["prompt_id"] + "|" + d["sample"].astype(str)
    else:
        d["unit"] = d["respondent"]
    kept = d[d["canonical"].notna()]
    per_response = kept.drop_duplicates(["respondent", "prompt_id", "sample", "canonical"])
    table = pd.crosstab(per_response["unit"], per_response["canonical"])
    table = table.reindex(sorted(d["unit"].unique()), fill_value=0)
    table = table.reindex(columns=sorted(table.columns))
    table.index.name = unit
    table.columns.name = None
    return (table > 0).astype(int) if coding == "binary" else table.astype(int)


def save_lexicon(result: LexiconResult, folder: Path) -> dict[str, Path]:
    """Write the lexicon stage's tables and incidence matrices to ``folder`` (a run's ``data/processed``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = {
        "descriptors": folder / "descriptors.csv",
        "lexicon": folder / "lexicon.csv",
        "funnel": folder / "lexicon_funnel.csv",
        "merges": folder / "lexicon_merges.csv",
    }
    result.descriptors.to_csv(out["descriptors"], index=False, lineterminator="\n")
    result.lexicon.to_csv(out["lexicon"], index=False, lineterminator="\n")
    result.funnel.to_csv(out["funnel"], index=False, lineterminator="\n")
    result.merges.to_csv(out["merges"], index=False, lineterminator="\n")
    for unit in ("respondent", "response"):
        for coding in ("binary", "counts"):
            path = folder / f"incidence_{unit}_{coding}.csv"
            incidence_matrix(result.descriptors, unit, coding).to_csv(path, lineterminator="\n")
            out[f"incidence_{unit}_{coding}"] = path
    return out


def load_raw_descriptors(folder: Path) -> pd.DataFrame:
    """The parsed descriptors written by notebook 01 (one row per raw descriptor)."""
    path = Path(folder) / "descriptors_raw.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run notebooks/01_elicitation.ipynb first")
    return pd.read_csv(path, keep_default_na=False)


def load_incidence(unit: str = "respondent", coding: str = "binary", *, folder: Path) -> pd.DataFrame:
    """The incidence matrix written by notebook 02 into ``folder`` (units x lexicon words)."""
    path = Path(folder) / f"incidence_{unit}_{coding}.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run notebooks/02_lexicon.ipynb first")
    return pd.read_csv(path, index_col=0)


def load_respondents(folder: Path) -> pd.DataFrame:
    """Respondent metadata (model, family, size, training stage, decoding settings)."""
    path = Path(folder) / "respondents.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run notebooks/02_lexicon.ipynb first")
    return pd.read_csv(path)


# figures -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PaperScale:
    """What the paper (arXiv 2404.12744) reports about its lexicon: lower bounds, not exact counts."""

    obtained_words: int = 40_000  # "40k+ obtained words"
    unique_words: int = 190  # "190+ unique words"
    respondents: int = 525
    prompts: int = 15


PAPER_SCALE = PaperScale()


def plot_funnel(funnel: pd.DataFrame, respondents: int | None = None, prompts: int | None = None):
    """The cleaning funnel on linear axes (descriptors and unique terms per step), and beside it our
    start and end next to the paper's "40k+ obtained words and 190+ unique words".

    ``respondents`` and ``prompts`` (ours) are printed next to the paper's 525 and 15 when given.
    """
    import matplotlib.pyplot as plt
    import matplotlib.ticker as mticker

    from .core.io import PALETTE, apply_style

    apply_style()
    ours_colour, paper_colour = PALETTE["Competence"], "#9e9e9e"
    fig = plt.figure(figsize=(12.0, 0.42 * len(funnel) + 2.6))
    outer = fig.add_gridspec(1, 2, width_ratios=[2.0, 0.75], wspace=0.22)
    left = outer[0].subgridspec(1, 2, wspace=0.06)
    right = outer[1].subgridspec(2, 1, hspace=0.9)
    ax_desc = fig.add_subplot(left[0])
    ax_terms = fig.add_subplot(left[1], sharey=ax_desc)
    thousands = mticker.FuncFormatter(lambda v, _: f"{v / 1000:g}k" if v >= 1000 else f"{v:g}")
    y = np.arange(len(funnel))[::-1]
    for ax, column, title in (
        (ax_desc, "descriptors", "descriptors kept"),
        (ax_terms, "unique_terms", "unique terms"),
    ):
        values = funnel[column].to_numpy(dtype=float)
        ax.barh(y, values, color=ours_colour, height=0.7)
        for yi, value in zip(y, values, strict=True):
            ax.text(value + values.max() * 0.01, yi, f"{int(value):,}", va="center", fontsize=8.5)
        ax.set_xlim(0, values.max() * 1.18)
        ax.xaxis.set_major_formatter(thousands)
        ax.set_xlabel(title)
        ax.grid(axis="y", visible=False)
    ax_desc.set_yticks(y, funnel["step"])
    ax_terms.tick_params(axis="y", labelleft=False)
    ax_desc.set_title("Our cleaning funnel, step by step (linear scale)", loc="left")
    comparisons = (
        ("words obtained", int(funnel["descriptors"].iloc[0]), PAPER_SCALE.obtained_words),
        (
            "unique words in the lexicon",
            int(funnel["unique_terms"].iloc[-1]),
            PAPER_SCALE.unique_words,
        ),
    )
    for row, (title, ours, paper) in enumerate(comparisons):
        ax = fig.add_subplot(right[row])
        ax.barh(
            [1, 0],
            [ours, paper],
            color=[ours_colour, "white"],
            edgecolor=[ours_colour, paper_colour],
            hatch=[None, "///"],
            height=0.6,
        )
        top = max(ours, paper) * 1.45
        ax.text(ours + top * 0.015, 1, f"{ours:,}", va="center", fontsize=8.5)
        ax.text(
            paper + top * 0.015,
            0,
            f"{paper / 1000:g}k+" if paper >= 1000 else f"{paper}+",
            va="center",
            fontsize=8.5,
            color="#555555",
        )
        ax.set_xlim(0, top)
        ax.xaxis.set_major_locator(mticker.MaxNLocator(4))
        ax.xaxis.set_major_formatter(thousands)
        ax.set_yticks([1, 0], ["ours", "paper"])
        ax.set_title(title, fontsize=10, loc="left")
        ax.grid(axis="y", visible=False)
    scale = f"paper: {PAPER_SCALE.respondents} respondents \u00d7 {PAPER_SCALE.prompts} prompts"
    if respondents is not None:
        scale = f"ours: {respondents} respondents" + (f" \u00d7 {prompts} prompts" if prompts else "") + f"; {scale}"
    scale += '; the paper gives lower bounds ("40k+ obtained words and 190+ unique words")'
    fig.text(0.99, 0.0, scale, ha="right", va="top", fontsize=8.5, color="#555555")
    fig.suptitle("From raw descriptors to the value lexicon, ours beside the paper's", fontweight="bold", y=1.0)
    return fig


def plot_top_words(lexicon: pd.DataFrame, n: int = 30):
    """The n words used by the most respondents."""
    import matplotlib.pyplot as plt

    from .core.io import apply_style

    apply_style()
    top = lexicon.sort_values(["respondents", "word"], ascending=[False, True]).head(n)
    fig, ax = plt.subplots(figsize=(6.5, 0.22 * len(top) + 1.2))
    ax.barh(top["word"][::-1], top["respondents"][::-1], color="#3b6fb6")
    ax.set_xlabel("respondents using the word")
    ax.set_title(f"The {len(top)} value words used by the most respondents")
    return fig


def top_words_by_stage(descriptors: pd.DataFrame, n: int = 15) -> pd.DataFrame:
    """Share of each training stage's respondents using each word; the n most used per stage."""
    kept = descriptors[descriptors["canonical"].notna()]
    respondents = descriptors.groupby("training_stage")["respondent"].nunique()
    use = kept.drop_duplicates(["respondent", "canonical"]).groupby(["training_stage", "canonical"]).size()
    share = (use / respondents.reindex(use.index.get_level_values(0)).to_numpy()).rename("share").reset_index()
    share = share.sort_values(["training_stage", "share", "canonical"], ascending=[True, False, True])
    return share.groupby("training_stage").head(n).rename(columns={"canonical": "word"}).reset_index(drop=True)


def plot_top_words_by_stage(table: pd.DataFrame):
    """One panel per training stage: the share of its respondents using each top word."""
    import matplotlib.pyplot as plt

    from .core.io import STAGE_COLOURS, apply_style

    apply_style()
    stages = list(dict.fromkeys(table["training_stage"]))
    n = table.groupby("training_stage").size().max()
    fig, axes = plt.subplots(
        1, len(stages), figsize=(3.9 * len(stages), 0.24 * n + 1.6), squeeze=False, layout="constrained"
    )
    for ax, stage in zip(axes[0], stages, strict=True):
        t = table[table["training_stage"] == stage]
        ax.barh(t["word"][::-1], t["share"][::-1], color=STAGE_COLOURS.get(stage, "#3b6fb6"))
        ax.set_title(f"{stage} models")
        ax.set_xlim(0, 1)
        ax.set_xlabel("share of respondents")
    fig.suptitle("The most used value words of each training stage", fontweight="bold")
    return fig
