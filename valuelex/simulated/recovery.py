"""Planted against recovered, for the first stages: the answer parser (notebook 01) and the lexicon (02).

``first_stages(population, processed, raw, lexicon)`` reads what notebooks 01 and 02 wrote
(``responses.csv``, ``descriptors.csv``, ``lexicon.csv``, ``incidence_respondent_binary.csv``)
and the stored answers (``raw/elicitation/``), rebuilds the planted truth of every simulated
answer from its stored request (and checks that the population still gives the stored text), and
measures

* **the parser**: of the planted items each answer says whole (value words and non-values), how
  many came out as a descriptor of their own (*found*), inside a longer descriptor (*glued*), in
  pieces (*split*) or not at all (*lost*; *lost to the truncation rule* when the answer hit its
  token limit and the item was its last), and how many descriptors are no planted item
  (*spurious*); by answer form, and by the sentence templates that lose words;
* **the lexicon**: planted value words recovered (the lexicon term most of a word's uses land in
  is in the lexicon), variants merged into their word's term (adjectives, adverbs, British
  spelling, misspellings), terms that join different planted words, non-values removed, terms
  that are no planted word, and how well the respondents x words matrix the factor analysis gets
  matches the planted one. Each loss is listed with the rule that caused it and why.

The report prints as tables (``print(report)``, or a notebook cell); ``report.metrics()`` gives
the numbers.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..core.display import Report
from ..core.errors import UserError
from ..lexicon import LexiconRules, LexiconSettings, family_key, normalise
from ..llm.cards import ModelCard, Respondent
from ..llm.request import Request
from ..llm.store import ResponseStore
from ..llm.wire import request_body
from .population import Ask, Population

PARSER_OUTCOMES = ("found", "glued", "split", "lost", "lost to the truncation rule")
VARIANT_KINDS = ("noun", "adjective", "adverb", "british", "misspelt")
FREQUENCY_DROP = "fewer than"  # how the lexicon's frequency rule starts its reason


class TruthMismatch(UserError):
    """The stored answers are not those the population gives now (it changed since they were asked)."""


# ------------------------------------------------------------------------------------------
# The truth of each stored answer
# ------------------------------------------------------------------------------------------
def _card_for(canonical: dict[str, Any]) -> ModelCard:
    """A card with what ``request_body`` reads from it, rebuilt from a stored request."""
    return ModelCard(
        name=canonical["model"],
        provider="openai_compatible",
        model=canonical["model_id"],
        family="",
        params_b=None,
        training_stage="aligned",
        price_input=0.0,
        price_output=0.0,
        api=canonical["api"],
        prompt_template=canonical.get("prompt_template"),
        stop=tuple(canonical.get("stop") or ()),
        send_seed=True,
    )


def ask_of(canonical: dict[str, Any]) -> Ask:
    """What the simulated server read from a stored request: the body ``LLMRunner`` sent, rebuilt."""
    params = canonical["params"]
    request = Request(
        model=canonical["model"],
        messages=tuple((m["role"], m["content"]) for m in canonical["messages"]),
        temperature=params["temperature"],
        top_p=params["top_p"],
        max_tokens=params["max_tokens"],
        seed=params["seed"],
        extra=tuple((canonical.get("extra") or {}).items()),
    )
    path, body = request_body(_card_for(canonical), request)
    return Ask.from_body(body, "completions" if path == "/completions" else "chat")


def answers_truth(population: Population, raw: str | Path, study: str = "elicitation") -> pd.DataFrame:
    """One row per stored final answer of a simulated model: respondent, prompt id, sample, text and truth.

    Raises TruthMismatch when the population no longer gives a stored answer's text.
    """
    store = ResponseStore(Path(raw) / study, announce=False)
    rows, mismatched = [], []
    for record in store.final_records():
        canonical = record["request"]
        if canonical["model"] not in population.models or record["status"] != "ok":
            continue
        answer = population.answer(ask_of(canonical))
        if answer.text != record.get("text"):
            mismatched.append(record["key"])
            continue
        params = canonical["params"]
        respondent = Respondent(canonical["model"], params["temperature"], params["top_p"], params["seed"])
        rows.append(
            {
                "respondent": respondent.id,
                "prompt_id": canonical["prompt_id"],
                "sample": canonical["sample"],
                "stored_text": record["text"],
                "truth": answer.truth,
            }
        )
    if mismatched:
        raise TruthMismatch(
            f"{Path(raw) / study}: {len(mismatched)} stored answers (e.g. key {mismatched[0]}) are not what the "
            f"population {population.spec.path} gives now: it changed since they were asked; recover with the "
            "population that answered, or ask again into a new store"
        )
    return pd.DataFrame(rows, columns=["respondent", "prompt_id", "sample", "stored_text", "truth"])


# ------------------------------------------------------------------------------------------
# The parser
# ------------------------------------------------------------------------------------------
def _contains(longer: str, shorter: str) -> bool:
    """Whether ``shorter`` is a whole-word part of ``longer``."""
    return bool(shorter) and re.search(rf"(?<![\w-]){re.escape(shorter)}(?![\w-])", longer) is not None


def match_answer(
    items: list[dict[str, Any]], descriptors: list[str], text: str, truncated: bool
) -> tuple[list[str], list[int | None]]:
    """(what became of each planted item, the item each descriptor came from or None) for one answer.

    Compared after the lexicon's normalisation (case, punctuation, spacing): an item is *found* when
    a descriptor equals it, *glued* when a descriptor holds it among other words, *split* when
    descriptors hold parts of it, else *lost* (*lost to the truncation rule* when the answer was cut
    at its token limit right after the item, so that the parser dropped it as possibly cut off).
    """
    item_norm = [normalise(it["surface"]) for it in items]
    desc_norm = [normalise(d) for d in descriptors]
    outcome: list[str | None] = [None] * len(items)
    source: list[int | None] = [None] * len(descriptors)
    for i, n in enumerate(item_norm):
        for j, d in enumerate(desc_norm):
            if source[j] is None and d == n:
                outcome[i], source[j] = "found", i
                break
    for i, n in enumerate(item_norm):
        if outcome[i] is not None:
            continue
        glued = next((j for j, d in enumerate(desc_norm) if source[j] is None and _contains(d, n)), None)
        if glued is not None:
            outcome[i], source[glued] = "glued", i
            continue
        parts = [j for j, d in enumerate(desc_norm) if source[j] is None and d and d != n and _contains(n, d)]
        if parts:
            outcome[i] = "split"
            for j in parts:
                source[j] = i
    tail = normalise(text)
    for i, n in enumerate(item_norm):
        if outcome[i] is None:
            outcome[i] = "lost to the truncation rule" if truncated and tail.endswith(n) else "lost"
    return outcome, source  # type: ignore[return-value]


def _share(part: float, whole: float) -> float:
    return float(part) / whole if whole else float("nan")


# ------------------------------------------------------------------------------------------
# The report
# ------------------------------------------------------------------------------------------
@dataclass(repr=False)
class FirstStagesRecovery(Report):
    """Planted against recovered for the parser and the lexicon (see the module docstring)."""

    parser: pd.DataFrame  # by answer form
    parser_templates: pd.DataFrame  # sentence templates whose words the parser loses
    spurious: pd.DataFrame  # the most common descriptors that are no planted item
    statuses: pd.DataFrame  # planted outcome x parse status
    lexicon: pd.DataFrame  # measure, of, count, share
    variants: pd.DataFrame  # by kind of form
    losses: pd.DataFrame  # forms of words that could survive, outside their word's term: rule and why
    over_merged: pd.DataFrame  # lexicon terms joining different planted words
    unplanted_terms: pd.DataFrame  # lexicon terms that are no planted value word
    numbers: dict[str, Any]
    terms: dict[str, str] = field(default_factory=dict)  # recovered planted word -> its own term in the matrix

    title = "Recovery of the planted population: parser (notebook 01) and lexicon (notebook 02)"

    def sections(self) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = [
            ("Parser: what became of the planted items each answer says whole, by answer form", self.parser),
        ]
        if len(self.parser_templates):
            out.append(
                ("Templates around the words whose planted items the parser does not find", self.parser_templates)
            )
        if len(self.spurious):
            out.append(("Descriptors that are no planted item (most common)", self.spurious))
        out += [
            ("Parse status of each planted outcome (answers)", self.statuses),
            ("Lexicon", self.lexicon),
            ("Uses of each kind of form of the words that could survive, and where they went", self.variants),
        ]
        if len(self.losses):
            out.append(("Where the lexicon loses structure: forms outside their word's term", self.losses))
        if len(self.over_merged):
            out.append(("Lexicon terms that join different planted words", self.over_merged))
        if len(self.unplanted_terms):
            out.append(("Lexicon terms that are no planted value word", self.unplanted_terms))
        return out

    def metrics(self) -> dict[str, Any]:
        return dict(self.numbers)


def _read(processed: Path, name: str) -> pd.DataFrame:
    path = processed / name
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run notebooks 01 and 02 of the run first")
    return pd.read_csv(path, keep_default_na=False)


def _parser_tables(merged: pd.DataFrame, by_answer: dict) -> tuple[pd.DataFrame, dict, Counter, Counter]:
    """Every planted item said whole with its parser outcome; descriptor -> (item, outcome); spurious counts."""
    rows, links = [], {}
    spurious_by_form: Counter = Counter()
    spurious_terms: Counter = Counter()
    for row in merged.itertuples(index=False):
        t = row.truth
        said = [it for it in t["items"] if it.get("complete")]
        group = by_answer.get((row.respondent, row.prompt_id, row.sample))
        descs = list(group["raw"]) if group is not None else []
        outcome, source = match_answer(said, descs, row.stored_text, row.finish_reason == "length")
        template = (t.get("templates") or [""])[0]  # the template that holds the words
        for it, out in zip(said, outcome, strict=True):
            rows.append(
                {
                    **{k: it[k] for k in ("word", "kind", "form", "british", "typo", "surface")},
                    "answer_form": t["form"],
                    "template": template,
                    "outcome": out,
                    "respondent": row.respondent,
                    "model": row.model,
                }
            )
        if group is not None:
            for index, src, desc in zip(group.index, source, descs, strict=True):
                links[index] = (said[src], outcome[src]) if src is not None else (None, None)
                if src is None:
                    spurious_by_form[t["form"]] += 1
                    spurious_terms[normalise(desc)] += 1
    items = pd.DataFrame(rows, columns=["word", "kind", "form", "british", "typo", "surface", "answer_form",
                                        "template", "outcome", "respondent", "model"])  # fmt: skip
    return items, links, spurious_by_form, spurious_terms


def first_stages(
    population: Population, processed: str | Path, raw: str | Path, lexicon: LexiconSettings
) -> FirstStagesRecovery:
    """Measure the parser and the lexicon of a run of the simulated population (see the module docstring).

    ``processed``: the run's ``data/processed`` (notebooks 01 and 02 ran); ``raw``: its response
    store; ``lexicon``: the run's lexicon settings (its frequency rule decides which words could survive).
    """
    processed, raw = Path(processed), Path(raw)
    responses = _read(processed, "responses.csv")
    descriptors = _read(processed, "descriptors.csv")
    lex = _read(processed, "lexicon.csv")
    incidence = pd.read_csv(processed / "incidence_respondent_binary.csv", index_col=0)
    truth = answers_truth(population, raw)
    responses = responses[responses["model"].isin(population.models)]
    key = ["respondent", "prompt_id", "sample"]
    merged = responses.merge(truth, on=key, how="inner", validate="one_to_one")
    if len(merged) < len(responses):
        raise TruthMismatch(
            f"{processed / 'responses.csv'}: {len(responses) - len(merged)} simulated answers have no stored record "
            f"in {raw / 'elicitation'} (was the run's store moved?)"
        )
    descriptors = descriptors[descriptors["model"].isin(population.models)].copy()
    by_answer = dict(iter(descriptors.groupby(key, sort=False)))
    items, links, spurious_by_form, spurious_terms = _parser_tables(merged, by_answer)

    # --- parser --------------------------------------------------------------------------
    forms = merged["truth"].map(lambda t: t["form"]).value_counts()
    counts = pd.crosstab(items["answer_form"], items["outcome"]).reindex(columns=PARSER_OUTCOMES, fill_value=0)
    counts = counts.reindex(forms.index, fill_value=0)
    said = counts.sum(axis=1)
    parser = pd.DataFrame({"answers": forms, "items said": said})
    for outcome in PARSER_OUTCOMES:
        parser[outcome] = (counts[outcome] / said.replace(0, np.nan)).round(4)
    parser["spurious per answer"] = (pd.Series(spurious_by_form).reindex(forms.index, fill_value=0) / forms).round(3)
    total = {"answers": int(forms.sum()), "items said": int(said.sum())}
    total.update({o: round(_share(counts[o].sum(), said.sum()), 4) for o in PARSER_OUTCOMES})
    total["spurious per answer"] = round(_share(sum(spurious_by_form.values()), len(merged)), 3)
    parser = pd.concat([parser, pd.DataFrame(total, index=["all answers"])]).rename_axis("answer form")
    missed = items[(items["outcome"] != "found") & (items["template"] != "")]
    templates = (
        items[items["template"] != ""]
        .groupby("template")
        .agg(items_said=("outcome", "size"), not_found=("outcome", lambda s: int((s != "found").sum())))
    )
    templates = templates[templates["not_found"] > 0]
    if len(templates):
        templates["share not found"] = (templates["not_found"] / templates["items_said"]).round(3)
        templates["how"] = missed.groupby("template")["outcome"].agg(lambda s: ", ".join(sorted(set(s))))
        templates = templates.sort_values("not_found", ascending=False).rename(
            columns={"items_said": "items said", "not_found": "not found"}
        )
    spurious_rows = []
    unplanted = descriptors.loc[[i for i, (src, _) in links.items() if src is None]]
    for term, n in spurious_terms.most_common(12):
        fate = unplanted.loc[unplanted["normalised"] == term]
        terms = fate.loc[fate["canonical"] != "", "canonical"].value_counts()
        reasons = fate.loc[fate["dropped"] != "", "dropped"].value_counts()
        went = (
            f"in the lexicon as {terms.index[0]!r}"
            if len(terms)
            else f"dropped: {reasons.index[0]}"
            if len(reasons)
            else ""
        )
        spurious_rows.append({"descriptor": term, "count": n, "lexicon": went})
    spurious = pd.DataFrame(spurious_rows, columns=["descriptor", "count", "lexicon"])
    statuses = pd.crosstab(merged["truth"].map(lambda t: t["outcome"]), merged["parse_status"])
    statuses = statuses.rename_axis(index="planted outcome", columns=None)

    # --- lexicon -------------------------------------------------------------------------
    rules = LexiconRules.load()
    lexicon_words = set(lex["word"])
    linked = [links.get(i, (None, None)) for i in descriptors.index]
    descriptors["item"] = [it for it, _ in linked]
    descriptors["link"] = [out for _, out in linked]
    descriptors["word"] = [it["word"] if it is not None else "" for it in descriptors["item"]]
    descriptors["kind"] = [
        "unplanted" if it is None else it["kind"] if out == "found" else "part of an item" for it, out in linked
    ]
    descriptors["variant"] = [
        "" if it is None else "misspelt" if it["typo"] else "british" if it["british"] else it["form"]
        for it in descriptors["item"]
    ]
    kept = descriptors["dropped"] == ""
    descriptors["outcome"] = np.where(kept, descriptors["canonical"], "dropped: " + descriptors["dropped"])
    values = descriptors[descriptors["kind"] == "value"]
    kept_values = values[values["dropped"] == ""]
    # a planted word's term: where most of its uses (misspellings aside) land
    spelled = kept_values[kept_values["variant"] != "misspelt"]
    term_of = spelled.groupby("word")["canonical"].agg(lambda s: s.value_counts().index[0]).to_dict()
    # the words that could survive the frequency rule, from the truth (who said them whole)
    said_values = items[items["kind"] == "value"]
    usage = said_values.groupby("word").agg(respondents=("respondent", "nunique"), models=("model", "nunique"))
    could = usage[(usage["respondents"] >= lexicon.min_respondents) & (usage["models"] >= lexicon.min_models)]
    eligible = list(could.index)
    recovered = [w for w in eligible if term_of.get(w) in lexicon_words]

    over_rows = []
    for term, part in kept_values.groupby("canonical"):
        words = part["word"].value_counts()
        if len(words) > 1:
            stems = sorted({family_key(normalise(w), rules) for w in words.index})
            over_rows.append(
                {
                    "lexicon term": term,
                    "in the lexicon": term in lexicon_words,
                    "planted words (uses)": "; ".join(f"{w} ({n})" for w, n in words.items()),
                    "sub-dimensions": "; ".join(sorted({population.subdimension[w] for w in words.index})),
                    "why": "families: the words' forms share the Snowball stem " + ", ".join(map(repr, stems)),
                }
            )
    over_merged = pd.DataFrame(
        over_rows, columns=["lexicon term", "in the lexicon", "planted words (uses)", "sub-dimensions", "why"]
    )
    joined = set(kept_values.groupby("canonical")["word"].nunique().loc[lambda s: s > 1].index)
    pure = [w for w in recovered if term_of[w] not in joined and term_of[w] in incidence.columns]

    variant_rows = []
    could_values = values[values["word"].isin(eligible)]
    for vkind in VARIANT_KINDS:
        part = could_values[could_values["variant"] == vkind]
        into = (part["dropped"] == "") & part["canonical"].eq(part["word"].map(term_of))
        rare = part["dropped"].str.startswith(FREQUENCY_DROP)
        variant_rows.append(
            {
                "form": vkind,
                "uses": len(part),
                "into the word's term": round(_share(into.sum(), len(part)), 4),
                "another term": round(_share(((part["dropped"] == "") & ~into).sum(), len(part)), 4),
                "dropped: frequency rule": round(_share(rare.sum(), len(part)), 4),
                "dropped: non-value rules": round(_share(((part["dropped"] != "") & ~rare).sum(), len(part)), 4),
            }
        )
    variants = pd.DataFrame(variant_rows).set_index("form")
    variant_uses = could_values[could_values["variant"].isin(["adjective", "adverb", "british"])]
    variant_into = int(
        ((variant_uses["dropped"] == "") & variant_uses["canonical"].eq(variant_uses["word"].map(term_of))).sum()
    )

    losses = _losses(values, term_of, set(eligible), lexicon_words, rules, lexicon)

    non_values = descriptors[descriptors["kind"] == "non_value"]
    nv_removed = int((non_values["dropped"] != "").sum())
    unplanted_rows = []
    sources = descriptors[kept].groupby("canonical")["kind"]
    for term in lex["word"]:
        if term not in sources.groups:  # a word only other (real) models of the panel used
            continue
        shares = sources.get_group(term).value_counts(normalize=True)
        if shares.get("value", 0.0) >= 0.5:
            continue
        main = shares.index[0]
        unplanted_rows.append(
            {
                "lexicon term": term,
                "uses": int(lex.loc[lex["word"] == term, "count"].iloc[0]),
                "respondents": int(lex.loc[lex["word"] == term, "respondents"].iloc[0]),
                "mostly": {"non_value": "a planted non-value", "unplanted": "answer text that is no item"}.get(
                    main, main
                ),
                "why it stayed": "not in configs/lexicon/non_values.yaml, and used by enough respondents"
                if main == "non_value"
                else "the parser cut it out of the answer's prose; no non-value rule matches it",
            }
        )
    unplanted_terms = pd.DataFrame(
        unplanted_rows, columns=["lexicon term", "uses", "respondents", "mostly", "why it stayed"]
    )

    # the respondents x words matrix the factor analysis gets, against the planted one
    sim_rows = [r for r in incidence.index if r.split("|")[0] in population.models]
    planted_pairs = set(zip(said_values["respondent"], said_values["word"], strict=True))
    hits = planted_n = matrix_n = 0
    for w in pure:
        recovered_col = incidence.loc[sim_rows, term_of[w]]
        planted_col = np.array([(r, w) in planted_pairs for r in sim_rows])
        hits += int((planted_col & (recovered_col.to_numpy() == 1)).sum())
        planted_n += int(planted_col.sum())
        matrix_n += int((recovered_col == 1).sum())
    value_terms = sum(1 for t in lex["word"] if t in set(term_of.values()))
    rows = [
        ("planted value words said whole", len(usage), len(usage)),
        (f"... by >= {lexicon.min_respondents} respondents and >= {lexicon.min_models} models (could survive)",
         len(usage), len(eligible)),
        ("words recovered: their main term is in the lexicon", len(eligible), len(recovered)),
        ("... in a term of their own (no other planted word joined)", len(recovered), len(pure)),
        ("... uses of their variants (adjective, adverb, British) in the word's term", len(variant_uses), variant_into),
        ("uses of planted non-values removed", len(non_values), nv_removed),
        ("lexicon terms that are a planted value word's term", len(lex), value_terms),
        ("respondent x word uses planted, found in the incidence matrix", planted_n, hits),
        ("respondent x word uses in the incidence matrix, planted", matrix_n, hits),
    ]  # fmt: skip
    summary = pd.DataFrame(rows, columns=["measure", "of", "count"]).set_index("measure")
    summary["share"] = [round(_share(c, o), 4) for o, c in zip(summary["of"], summary["count"], strict=True)]
    said_n = int(said.sum())
    lost = counts["lost"].sum() + counts["lost to the truncation rule"].sum()
    numbers = {
        "answers": len(merged),
        "items_said": said_n,
        "parser_found": round(_share(counts["found"].sum(), said_n), 4),
        "parser_glued": round(_share(counts["glued"].sum(), said_n), 4),
        "parser_split": round(_share(counts["split"].sum(), said_n), 4),
        "parser_lost": round(_share(lost, said_n), 4),
        "parser_lost_truncation": round(_share(counts["lost to the truncation rule"].sum(), said_n), 4),
        "spurious_per_answer": round(_share(sum(spurious_by_form.values()), len(merged)), 4),
        "refusals_recognised": round(_share(_cell(statuses, "refusal", "refusal"), _row(statuses, "refusal")), 4),
        "words_said": len(usage),
        "words_eligible": len(eligible),
        "words_recovered": len(recovered),
        "words_recovered_share": round(_share(len(recovered), len(eligible)), 4),
        "words_recovered_own_term": len(pure),
        "variant_merge_share": round(_share(variant_into, len(variant_uses)), 4),
        "non_values_removed_share": round(_share(nv_removed, len(non_values)), 4),
        "terms_joining_planted_words": int(over_merged["in the lexicon"].sum()) if len(over_merged) else 0,
        "lexicon_size": len(lex),
        "lexicon_value_share": round(_share(value_terms, len(lex)), 4),
        "incidence_sensitivity": round(_share(hits, planted_n), 4),
        "incidence_precision": round(_share(hits, matrix_n), 4),
    }  # fmt: skip
    return FirstStagesRecovery(
        parser, templates, spurious, statuses, summary, variants, losses, over_merged, unplanted_terms, numbers,
        terms={w: term_of[w] for w in pure},
    )  # fmt: skip


def _cell(table: pd.DataFrame, row: str, column: str) -> int:
    return int(table.loc[row, column]) if row in table.index and column in table.columns else 0


def _row(table: pd.DataFrame, row: str) -> int:
    return int(table.loc[row].sum()) if row in table.index else 0


def _losses(
    values: pd.DataFrame,
    term_of: dict[str, str],
    eligible: set[str],
    lexicon_words: set[str],
    rules: LexiconRules,
    lexicon: LexiconSettings,
) -> pd.DataFrame:
    """Forms of the words that could survive, outside their word's term: where they went, the rule and why."""
    rows = []
    for word in sorted(w for w in eligible if term_of.get(w) not in lexicon_words):
        part = values[values["word"] == word]
        by_form = part.groupby("normalised")["respondent"].nunique().sort_values(ascending=False)
        shown = ", ".join(f"{f} {n}" for f, n in by_form.items())
        rows.append(
            {"planted word": word, "form": "(all)", "uses": len(part), "went to": "dropped (frequency rule)",
             "effect": "word lost", "word's term": term_of.get(word, ""), "in the lexicon": False,
             "rule": "frequency, after forms split",
             "why": f"its respondents are spread over forms (respondents: {shown}), each below "
                    f"{lexicon.min_respondents}"}
        )  # fmt: skip
    outside = values[~((values["dropped"] == "") & values["canonical"].eq(values["word"].map(term_of)))]
    recovered = {w for w in eligible if term_of.get(w) in lexicon_words}
    outside = outside[outside["word"].isin(recovered) & (outside["variant"] != "misspelt")]
    for (word, form), part in outside.groupby(["word", "normalised"]):
        variant = part["variant"].value_counts().index[0]
        went = part["outcome"].value_counts().index[0]
        term = term_of.get(word, "")
        if went.startswith("dropped:") and FREQUENCY_DROP not in went:
            rule, effect = "non-value rules", "uses removed"
            reason = went.removeprefix("dropped: ")
            why = (
                f"{form!r} is listed in configs/lexicon/non_values.yaml"
                if reason == "non-value list"
                else f"the rule {reason!r}"
            )
        else:
            if went.startswith("dropped:"):
                effect = "uses lost (too rare on their own)"
            elif went in lexicon_words:
                joined_word = next((w for w, t in term_of.items() if t == went), None)
                effect = f"joins {joined_word!r}" if joined_word else "a second lexicon term for the word"
            else:
                effect = "a term of its own, not in the lexicon"
            key_form, key_term = (
                family_key(rules.spelling.get(form, form), rules),
                family_key(term, rules) if term else "",
            )
            if variant == "british" and rules.spelling.get(form, form) == form:
                rule = "spelling"
                why = f"variants.yaml maps whole terms and has no entry for {form!r} (stems {key_form!r}, {key_term!r})"
            else:
                rule = "families"
                why = f"Snowball stems differ ({form!r} -> {key_form!r}, {term!r} -> {key_term!r}); no pair in variants.yaml"
        rows.append(
            {"planted word": word, "form": form, "uses": len(part), "went to": went, "effect": effect,
             "word's term": term, "in the lexicon": term in lexicon_words, "rule": rule, "why": why}
        )  # fmt: skip
    columns = ["planted word", "form", "uses", "went to", "effect", "word's term", "in the lexicon", "rule", "why"]
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values(["uses", "planted word"], ascending=[False, True]).reset_index(drop=True)
