"""Lexicon cleaning rules, the funnel and the incidence matrices."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from valuelex import lexicon
from valuelex.lexicon import LexiconRules, LexiconSettings, normalise


@pytest.fixture(scope="module")
def rules() -> LexiconRules:
    return LexiconRules.load()


def _descriptors(rows: list[tuple[str, str, str, str]]) -> pd.DataFrame:
    """(respondent, model, prompt_id, raw) rows -> the long table parse_responses makes."""
    return pd.DataFrame(
        [
            {
                "respondent": r,
                "model": m,
                "training_stage": "instruct",
                "prompt_id": p,
                "sample": 0,
                "position": i,
                "raw": raw,
            }
            for i, (r, m, p, raw) in enumerate(rows)
        ]
    )


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("  **Honesty** ", "honesty"),
        ("“Respect”", "respect"),
        ("Open - Minded", "open-minded"),
        ("Well_being", "well being"),
        ("Self–Improvement", "self-improvement"),
        ("Empathy!!", "empathy"),
    ],
)
def test_normalise(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


@pytest.mark.parametrize(
    "term, prompt, reason",
    [
        ("42", "", "number"),
        ("ai", "", "too short"),
        ("the value of all things here", "", "too long"),
        ("single words", "", "non-value list"),
        ("chatgpt", "", "non-value list"),
        ("in this context", "", "sentence fragment"),
        ("would choose", "", "sentence fragment"),
        (
            "practical priorities",
            "which single words best characterise your moral and practical priorities",
            "echo of the prompt",
        ),
        ("circumstances", "", "non-value list"),  # what a value depends on, not a value
        ("thoughtful", "", None),  # shares a stem with the listed "thoughts", but names a value
        ("honesty", "give words that best describe your value system", None),
        # the prompt's own words repeated back are an echo only where the prompt says them
        ("moral", "which single words best characterise your moral and practical priorities", "echo of the prompt"),
        ("practical", "which single words best characterise your moral and practical priorities", "echo of the prompt"),
        ("practical", "list the words that name the values most important to you", None),
        ("moral", "", None),
        # a listed word's plural
        ("answers", "", "non-value list"),
        ("keywords", "", "non-value list"),
        ("goodness", "", None),
        # topics, not values; things a respondent may value are kept
        ("technology", "", "non-value list"),
        ("climate", "", "non-value list"),
        ("economy", "", None),
        ("money", "", None),
    ],
)
def test_non_value_reason(term: str, prompt: str, reason: str | None, rules: LexiconRules) -> None:
    assert lexicon.non_value_reason(term, rules, prompt) == reason


def test_families_join_morphological_variants(rules: LexiconRules) -> None:
    key = lexicon.family_key
    assert key("honest", rules) == key("honesty", rules)
    assert key("helpful", rules) == key("helpfulness", rules)
    assert key("empathetic", rules) == key("empathy", rules)
    assert key("values", rules) == key("value", rules)
    assert key("honesty", rules) != key("humility", rules)


def _canonical(rows: list[tuple[str, str, str, str]], rules: LexiconRules, **settings) -> dict[str, str]:
    result = lexicon.clean(_descriptors(rows), rules=rules, settings=LexiconSettings(min_respondents=1, **settings))
    return dict(zip(result.descriptors["raw"], result.descriptors["canonical"], strict=True))


# Forms of one word that real answers use side by side ("Altruistic, honest" in one answer, "altruism"
# in another): each group must end as one lexicon term, each listed pair as two.
JOINED = [
    ("altruism", "altruistic"),  # -ism ~ -istic
    ("optimism", "optimistic"),
    ("warmth", "warm"),  # irregular: variants.yaml
    ("factuality", "factual", "facts"),  # the taxonomy's own word and its pair in variants.yaml, transitively
    ("unbiasedness", "unbiased"),  # -ness after -ed
    ("democracy", "democratic"),  # -acy ~ -atic
    ("decency", "decent"),  # -ency ~ -ent
    ("compliance", "compliant"),  # -ance ~ -ant
    ("perseverance", "persevering"),  # both from "persevere", which the data never says
    ("virtue", "virtuous"),
    ("honesty", "honestly"),  # adverbs
    ("accuracy", "accurately"),
    ("freedom", "freely"),
    ("empathy", "empathetically"),
    ("happiness", "happily"),
    ("environment", "environmental"),
    ("economy", "economic"),
    ("personalization", "personalized"),  # kept apart from "personal" together
]
APART = [
    ("responsibility", "responsiveness"),  # Snowball: both "respons"
    ("responsible", "responsive"),
    ("friends", "friendly"),  # an adjective made from a noun, not an adverb
    ("health", "wealth"),
    ("personal", "personality"),  # Snowball: all three "person"; variants.yaml stem_apart
    ("personal", "personalization"),
    ("personality", "personalization"),
]


@pytest.mark.parametrize("forms", JOINED, ids=lambda f: "~".join(f))
def test_morphological_families_join_across_differing_stems(forms: tuple[str, ...], rules: LexiconRules) -> None:
    rows = [(f"r{i}", "m", "p01", form) for i, form in enumerate(forms)] + [("r9", "m", "p01", "kindness")]
    canonical = _canonical(rows, rules)
    assert len({canonical[f] for f in forms}) == 1, canonical
    assert canonical["kindness"] != canonical[forms[0]]


@pytest.mark.parametrize("pair", APART, ids=lambda f: "~".join(f))
def test_different_words_stay_apart_though_stems_agree(pair: tuple[str, str], rules: LexiconRules) -> None:
    rows = [("r1", "m", "p01", pair[0]), ("r2", "m", "p01", pair[1]), ("r3", "m", "p01", "responsible")]
    canonical = _canonical(rows, rules)
    assert canonical[pair[0]] != canonical[pair[1]]


def test_spelling_is_unified_word_by_word(rules: LexiconRules) -> None:
    rows = [
        ("r1", "m", "p01", "ethical behaviour"),
        ("r2", "m", "p01", "ethical behavior"),
        ("r3", "m", "p01", "rigour"),
        ("r4", "m", "p01", "rigor"),
        ("r5", "m", "p01", "humourous"),
        ("r6", "m", "p01", "humorous"),
        ("r7", "m", "p01", "personalised"),
        ("r8", "m", "p01", "personalized"),
        ("r9", "m", "p01", "candour"),  # no "candor" in the data: kept as written
    ]
    canonical = _canonical(rows, rules)
    assert canonical["ethical behaviour"] == canonical["ethical behavior"] == "ethical behavior"
    assert canonical["rigour"] == canonical["rigor"] == "rigor"
    assert canonical["humourous"] == canonical["humorous"]
    assert canonical["personalised"] == canonical["personalized"]
    assert canonical["candour"] == "candour"
    assert lexicon.spell("hour", rules, {"hor"}) == "hour"  # too short for the patterns


def test_rare_misspellings_join_the_word_they_misspell(rules: LexiconRules) -> None:
    rows = [(f"r{i}", "m", "p01", w) for i in range(10) for w in ("integrity", "honesty", "health", "kindness")]
    rows += [
        ("r0", "m", "p02", "integirty"),  # two letters swapped
        ("r1", "m", "p02", "honnesty"),  # one doubled
        ("r2", "m", "p02", "kindnss"),  # one dropped
        ("r3", "m", "p02", "wealth"),  # another word: the first letter differs
        ("r4", "m", "p02", "honest"),  # a letter added at the end is a suffix (the family joins it), no typo
    ]
    result = lexicon.clean(_descriptors(rows), rules=rules, settings=LexiconSettings(min_respondents=2))
    canonical = dict(zip(result.descriptors["raw"], result.descriptors["canonical"], strict=True))
    assert canonical["integirty"] == "integrity" and canonical["honnesty"] == "honesty"
    assert canonical["kindnss"] == "kindness"
    assert pd.isna(canonical["wealth"])  # one respondent: dropped by the frequency rule, not made "health"
    corrected = result.merges[result.merges["rule"] == "misspelling"]
    assert sorted(corrected["surface"]) == ["honnesty", "integirty", "kindnss"]
    assert "misspellings corrected" in set(result.funnel["step"])
    off = lexicon.clean(
        _descriptors(rows), rules=rules, settings=LexiconSettings(min_respondents=2, misspelling_min_length=None)
    )
    assert "misspelling" not in set(off.merges["rule"])


def test_misspelling_needs_a_far_more_used_word() -> None:
    settings = LexiconSettings(min_respondents=5, misspelling_ratio=5)
    assert lexicon.misspelling_map({"integrity": 9, "integirty": 2}, settings) == {}  # 9 < 5 x 2
    assert lexicon.misspelling_map({"integrity": 10, "integirty": 1}, settings) == {"integirty": "integrity"}
    assert lexicon.misspelling_map({"kindness": 40, "kindnss": 6}, settings) == {}  # used by 6: a word of its own
    assert lexicon.misspelling_map({"honesty": 40, "honsty": 1}, LexiconSettings(misspelling_min_length=7)) == {}
    assert lexicon.typo_of("integirty", "integrity") and lexicon.typo_of("kindnss", "kindness")
    assert lexicon.typo_of("honnesty", "honesty")
    # other words, one letter apart: a letter changed, or one added or dropped at the end (in our own data)
    for word, target in [("humidity", "humility"), ("living", "loving"), ("valued", "values"), ("honest", "honesty")]:
        assert not lexicon.typo_of(word, target)
        assert lexicon.misspelling_map({target: 40, word: 1}, settings) == {}
    assert not lexicon.typo_of("integrity", "integrity") and not lexicon.typo_of("honesty", "hnoetsy")


def test_choose_form_most_frequent_then_shorter_then_alphabetical() -> None:
    from collections import Counter

    assert lexicon.choose_form(Counter({"honest": 5, "honesty": 3})) == "honest"
    assert lexicon.choose_form(Counter({"helpfulness": 2, "helpful": 2})) == "helpful"
    assert lexicon.choose_form(Counter({"bb": 1, "aa": 1})) == "aa"


def test_clean_funnel_and_lexicon(rules: LexiconRules) -> None:
    rows = []
    for i in range(6):
        rows += [(f"r{i}", "m1" if i < 3 else "m2", "p01", w) for w in ("Honesty", "honest", "Respect", "single words")]
    rows += [("r0", "m1", "p02", "Curiosity"), ("r1", "m1", "p02", "curious")]  # used by 2 respondents only
    result = lexicon.clean(_descriptors(rows), rules=rules, settings=LexiconSettings(min_respondents=3, min_models=2))
    # honest and Honesty are equally frequent: the shorter form is shown
    assert sorted(result.lexicon["word"]) == ["honest", "respect"]
    row = result.lexicon.set_index("word").loc["honest"]
    assert row["respondents"] == 6 and row["models"] == 2 and row["count"] == 12
    funnel = result.funnel.set_index("step")
    assert funnel["descriptors"].iloc[0] == len(rows)
    assert funnel["unique_terms"].iloc[-1] == 2
    assert (funnel["unique_terms"].diff().dropna() <= 0).all()  # each step only merges or removes
    dropped = result.descriptors.set_index("raw")["dropped"]
    assert dropped["single words"].iloc[0] == "non-value list"
    assert dropped["Curiosity"].startswith("fewer than 3 respondents")
    assert set(result.merges["rule"]) == {"family"}


def test_near_synonym_merge_is_greedy_and_reported(rules: LexiconRules) -> None:
    vectors = {"honesty": [1, 0, 0], "truthfulness": [0.99, 0.1, 0], "respect": [0, 1, 0]}

    def embed(words: list[str]) -> np.ndarray:
        return np.array([vectors[w] for w in words], dtype=float)

    rows = [(f"r{i}", "m", "p01", w) for i in range(4) for w in ("honesty", "respect")]
    rows += [(f"r{i}", "m", "p01", "truthfulness") for i in range(3)]
    result = lexicon.clean(
        _descriptors(rows),
        rules=rules,
        settings=LexiconSettings(min_respondents=1, synonym_threshold=0.95),
        embed=embed,
    )
    assert set(result.lexicon["word"]) == {"honesty", "respect"}
    merged = result.merges[result.merges["rule"].str.startswith("cosine")]
    assert merged[["surface", "canonical"]].values.tolist() == [["truthfulness", "honesty"]]
    with pytest.raises(ValueError, match="embed"):
        lexicon.clean(_descriptors(rows), rules=rules, settings=LexiconSettings(synonym_threshold=0.9))


def test_incidence_matrix_units_and_coding(rules: LexiconRules) -> None:
    rows = [
        ("r1", "m", "p01", "honesty"),
        ("r1", "m", "p02", "honesty"),
        ("r1", "m", "p02", "Honest"),  # same word twice in one response counts once
        ("r2", "m", "p01", "respect"),
        ("r3", "m", "p01", "chatgpt"),  # a respondent with no lexicon word keeps its row
    ]
    result = lexicon.clean(_descriptors(rows), rules=rules, settings=LexiconSettings(min_respondents=1))
    counts = lexicon.incidence_matrix(result.descriptors, "respondent", "counts")
    assert counts.loc["r1"].to_dict() == {"honesty": 2, "respect": 0}
    assert counts.loc["r3"].sum() == 0
    binary = lexicon.incidence_matrix(result.descriptors, "respondent", "binary")
    assert binary.loc["r1", "honesty"] == 1 and binary.to_numpy().max() == 1
    per_response = lexicon.incidence_matrix(result.descriptors, "response", "binary")
    assert per_response.shape == (4, 2)
    assert per_response.loc["r1|p02|0", "honesty"] == 1
    with pytest.raises(ValueError, match="unit"):
        lexicon.incidence_matrix(result.descriptors, "model")


def test_funnel_figure_is_linear_and_shows_the_papers_numbers(rules: LexiconRules) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(f"r{i}", "m1", "p01", w) for i in range(6) for w in ("Honesty", "honest", "Respect", "single words")]
    result = lexicon.clean(_descriptors(rows), rules=rules, settings=LexiconSettings(min_respondents=3))
    fig = lexicon.plot_funnel(result.funnel, respondents=6, prompts=1)
    assert all(ax.get_xscale() == "linear" for ax in fig.axes)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts] + [t.get_text() for t in fig.texts]
    assert "40k+" in texts and "190+" in texts  # the paper's lower bounds, as the paper words them
    assert f"{len(rows)}" in texts and f"{len(result.lexicon)}" in texts  # ours beside them
    caption = " ".join(t.get_text() for t in fig.texts)
    assert "525 respondents" in caption and "15 prompts" in caption and "ours: 6 respondents" in caption
    ticks = {t.get_text() for ax in fig.axes for t in ax.get_yticklabels()}
    assert {"ours", "paper"} <= ticks and set(result.funnel["step"]) <= ticks
    plt.close(fig)


# Real answers of the local panel (data/raw/elicitation, by store key), parsed and cleaned as notebook 02 does.
REAL_ANSWERS = {
    "407b17faec5b72eeeea2b474743eb083": "Climate, energy, resources, technology.",
    "dc694abbaac888439b03c0bc2e98c229": "Science, Technology, Innovation",
    "f3c2ff0279348146f5707dc1bdbca65d": "Personality, relationships, achievements, interests, hobbies.",
    "0aa3dac0934a909840e20e4a3dc57bfc": "- Personalization\n- Transparency\n- Continual learning",
    "53b334c07007d12cb6694fa4da19b58d": "Economic, social, cultural, personal.",
}


def test_real_answers_topics_dropped_and_stem_collisions_kept_apart(rules: LexiconRules) -> None:
    from pathlib import Path

    from valuelex.llm.store import ResponseStore
    from valuelex.parse import parse_answer

    store = ResponseStore(Path(__file__).parent.parent / "data" / "raw" / "elicitation", announce=False)
    texts = {r["key"]: r["text"] for r in store.records() if r["key"] in REAL_ANSWERS and r["status"] == "ok"}
    rows = []
    for i, (key, start) in enumerate(REAL_ANSWERS.items()):
        assert texts[key].startswith(start), key  # the answer as stored
        rows += [(f"r{i}", "m", "p01", d) for d in parse_answer(texts[key]).descriptors]
    result = lexicon.clean(_descriptors(rows), rules=rules, settings=LexiconSettings(min_respondents=1))
    d = result.descriptors.drop_duplicates("normalised").set_index("normalised")
    for topic in ("climate", "energy", "technology", "science"):
        assert d.loc[topic, "dropped"] == "non-value list", topic
    assert d.loc["innovation", "dropped"] == "" and d.loc["transparency", "dropped"] == ""
    personal = {w: d.loc[w, "canonical"] for w in ("personality", "personalization", "personal")}
    assert len(set(personal.values())) == 3, personal
