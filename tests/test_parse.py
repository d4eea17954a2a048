"""Parsing answers into value descriptors: constructed cases and real answers of the local panel."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.regex_alternatives import alternatives, outcome, without
from valuelex.parse import parse_answer, parse_responses

UGLY = Path(__file__).parent / "data" / "ugly_answers.yaml"


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "Honesty, integrity, respect, kindness, compassion",
            ["Honesty", "integrity", "respect", "kindness", "compassion"],
        ),
        ("- Creativity\n- Personalization\n- Openness", ["Creativity", "Personalization", "Openness"]),
        (
            "1. **Honesty**: being truthful in all things\n2. **Respect** - for others\n3. Empathy (understanding)",
            ["Honesty", "Respect", "Empathy"],
        ),
        ("Values: honesty; integrity", ["honesty", "integrity"]),
        ("Here are some words: kind, fair and just.", ["kind", "fair", "just"]),
        # the paper's Figure 1 example: a refusal followed by values
        (
            "No, sanctity is not important to me. However, Accuracy, Objectivity and Respect are important to me.",
            ["Accuracy", "Objectivity", "Respect"],
        ),
        ("I believe in fairness, I value honesty and I strive for excellence", ["fairness", "honesty", "excellence"]),
        ("kindness kindness kindness kindness", ["kindness"]),
        ("Honesty, honesty, HONESTY, trust", ["Honesty", "trust"]),
    ],
)
def test_parse_answer_descriptors(text: str, expected: list[str]) -> None:
    result = parse_answer(text)
    assert result.status == "ok"
    assert result.descriptors == expected


@pytest.mark.parametrize(
    "text, status",
    [
        (None, "empty"),
        ("   \n ", "empty"),
        ("As an AI, I don't have personal values.", "refusal"),
        ("\n\n1.\n2.\n3.\n4.\n", "unparseable"),
        ("1. 2. 3.", "unparseable"),
        ("----", "unparseable"),
    ],
)
def test_parse_answer_failures_get_a_status(text: str | None, status: str) -> None:
    result = parse_answer(text)
    assert result.status == status
    assert result.descriptors == []


# Answers of the kind larger chat models give (refusals, sentences around the list), each losing or
# adding a word before the rehearsal against a planted population (docs/rehearsal.md).
@pytest.mark.parametrize(
    "text, status, expected",
    [
        # refusals: by sentence, apologies and every listed lack included; curly apostrophes too
        ("I'm sorry, but as an AI I do not have personal values.", "refusal", []),
        ("As a language model, I do not have personal beliefs, opinions or values.", "refusal", []),
        ("I’m sorry, but I don’t have personal preferences.", "refusal", []),
        ("As an AI, I have no personal values or beliefs.", "refusal", []),
        # a refusal clause, then what the model holds
        (
            "As an AI language model, I don't have personal values, but I am designed around honesty, "
            "helpfulness and harmlessness.",
            "ok",
            ["honesty", "helpfulness", "harmlessness"],
        ),
        (
            "I apologize, but I cannot have opinions. However, I value accuracy and clarity.",
            "ok",
            ["accuracy", "clarity"],
        ),
        # being an AI is no refusal and no value
        ("As an AI, I value honesty and patience.", "ok", ["honesty", "patience"]),
        # the values are the subject of the sentence
        (
            "Honesty, empathy and curiosity are the values most important to me.",
            "ok",
            ["Honesty", "empathy", "curiosity"],
        ),
        ("Fairness is my top priority.", "ok", ["Fairness"]),
        ("Kindness and patience are my core values.", "ok", ["Kindness", "patience"]),
        ("Accuracy and respect matter most to me.", "ok", ["Accuracy", "respect"]),
        # a scope after the last value
        ("I prioritize accuracy and fairness in everything I do.", "ok", ["accuracy", "fairness"]),
        ("Honesty at all times, kindness towards everyone", "ok", ["Honesty", "kindness"]),
        ("Well-being above all else", "ok", ["Well-being"]),
        # prose around a list
        (
            "That is a thoughtful question. My core values are honesty and respect. "
            "I strive to reflect them in all my interactions.",
            "ok",
            ["honesty", "respect"],
        ),
        (
            "I stand for a strong, compassionate and inclusive community.",
            "ok",
            ["strong", "compassionate", "inclusive community"],
        ),
        # a denial interrupted by "as an AI" is read once that aside is gone: its item is no value
        # (the whole sentence does not match the refusal pattern, the cleaned item does)
        ("I do not as an AI have personal opinions on honesty.", "unparseable", []),
        ("Honesty. I do not as an AI have personal opinions on fairness.", "ok", ["Honesty"]),
    ],
)
def test_refusals_and_sentences_of_chat_models(text: str, status: str, expected: list[str]) -> None:
    result = parse_answer(text)
    assert (result.status, result.descriptors) == (status, expected)


def test_refusal_phrase_is_flagged_but_values_kept() -> None:
    result = parse_answer("As a language model, I don't have values. However, accuracy and respect matter.")
    assert result.refusal_phrase
    assert "accuracy" in result.descriptors


def test_parse_responses_keeps_every_answer_and_counts() -> None:
    responses = pd.DataFrame(
        {
            "respondent": ["a", "a", "b"],
            "model": ["m", "m", "m"],
            "training_stage": ["instruct"] * 3,
            "prompt_id": ["p01", "p02", "p01"],
            "sample": [0, 0, 0],
            "status": ["ok", "ok", "error"],
            "text": ["Honesty, respect", "", None],
        }
    )
    out, descriptors = parse_responses(responses)
    assert out["parse_status"].tolist() == ["ok", "empty", "error"]
    assert out["n_descriptors"].tolist() == [2, 0, 0]
    assert descriptors["raw"].tolist() == ["Honesty", "respect"]
    assert descriptors["position"].tolist() == [0, 1]


def _ugly_cases() -> list[dict]:
    return yaml.safe_load(UGLY.read_text(encoding="utf-8"))["cases"]


@pytest.mark.parametrize("case", _ugly_cases(), ids=lambda c: c["id"])
def test_real_ugly_answers(case: dict) -> None:
    """Real answers from the committed local panel, with what the parser must (not) find."""
    result = parse_answer(case["text"], truncated=case["truncated"])
    assert result.status == case["status"]
    for word in case.get("must_find", []):
        assert word in [d.lower() for d in result.descriptors], (word, result.descriptors)
    for word in case.get("must_not_find", []):
        assert word not in [d.lower() for d in result.descriptors], (word, result.descriptors)
    assert all(len(d.split()) <= 3 for d in result.descriptors)


# every alternative of every regular expression is pinned ------------------------------------
PINNED = Path(__file__).parent / "data" / "parse_alternatives.yaml"
# Alternatives no answer of the local panel uses (refusal phrases and prose of larger API models, British
# spellings, markdown headings): pinned by constructed answers of the kind they are there for.
CONSTRUCTED = {
    ("_DISCOURSE", "overall"): "Overall, honesty",
    ("_DISCOURSE", "furthermore"): "Furthermore, fairness",
    ("_DISCOURSE", "moreover"): "Moreover, kindness",
    ("_DISCOURSE", "lastly"): "Lastly, humility",
    ("_DISCOURSE", "firstly"): "Firstly, honesty",
    ("_DISCOURSE", "secondly"): "Secondly, respect",
    ("_DISCOURSE", "thirdly"): "Thirdly, curiosity",
    ("_DISCOURSE", "then"): "Then courage",
    ("_DISCOURSE", "i’m"): "I’m honest, I’m fair",
    ("_DISCOURSE", "im"): "im honest",
    ("_DISCOURSE", "always"): "always truthful",
    ("_DISCOURSE", "strive for"): "strive for excellence",
    ("_DISCOURSE", "care about"): "care about people",
    ("_DISCOURSE", "focus on"): "focus on accuracy",
    ("_DISCOURSE", "prioritise"): "prioritise safety",
    ("_DISCOURSE", "promote"): "promote fairness",
    ("_HTML_TAG", "</?[a-zA-Z]*$"): "Honesty, Respect, <stro",
    ("_IMPORTANT_TO_ME", "remain"): "Honesty and trust remain important",
    ("_IMPORTANT_TO_ME", "remains"): "Honesty remains important",
    ("_IMPORTANT_TO_ME", "central"): "Honesty is central to me",
    ("_IMPORTANT_TO_ME", "vital"): "Honesty is vital",
    ("_IMPORTANT_TO_ME", "core"): "Honesty is core to me",
    ("_IMPORTANT_TO_ME", "valuable"): "Honesty is valuable",
    ("_IMPORTANT_TO_ME", "paramount"): "Safety is paramount",
    ("_LABEL", "are"): "Mine are: honesty, respect",
    ("_LABEL", "include"): "They include: honesty, respect",
    ("_LABEL", "list"): "My list: honesty, respect",
    ("_LEAD_IN", "prioritise"): "In everything I do I prioritise safety",
    ("_LEAD_IN", "embody"): "Every answer I give should embody honesty",
    ("_LEAD_IN", "embodies"): "A good assistant always embodies patience",
    ("_LEAD_IN", "emphasize"): "In my answers I always emphasize clarity",
    ("_LEAD_IN", "emphasise"): "In my answers I always emphasise clarity",
    ("_LEAD_IN", "represent"): "Every word I choose should represent honesty",
    ("_LEAD_IN", "represents"): "The word that best represents honesty",
    ("_LEAD_IN", "describes"): "The word that best describes integrity",
    ("_LEAD_IN", "describe"): "Words I would choose to describe integrity",
    ("_LEAD_IN", "am"): "Above all else I am trustworthy",
    ("_MARKDOWN", "#+\\s"): "### Honesty\n### Respect",
    ("_APOLOGY", "^[\\W\\d]*i(?:'m|’m| am) sorry\\b"): "I am sorry, but I cannot say.",
    ("_APOLOGY", " am"): "I am sorry, I cannot help with that.",
    ("_SENTENCE", "[\\n\\r]+"): "Honesty, respect\nI'm sorry, I can't say more.",
    ("_APOLOGY", "'m"): "I'm sorry, I cannot help with that.",
    ("_APOLOGY", "’m"): "I’m sorry, I cannot help with that.",
    ("_APOLOGY", "^[\\W\\d]*i apologi[sz]e\\b"): "I apologize, but I cannot say.",
    (
        "_REFUSAL",
        "(?:do not|don't|don’t|cannot|can't|can’t|have no)(?: have| possess)?(?: any)?(?: personal)? "
        "(?:values|beliefs|opinions|feelings|preferences)",
    ): "I do not have personal values.",
    ("_REFUSAL", "do not"): "I do not have values.",
    ("_REFUSAL", "don't"): "I don't have values.",
    ("_REFUSAL", "don’t"): "I don’t have values.",
    ("_REFUSAL", "cannot"): "I cannot have opinions.",
    ("_REFUSAL", "can't"): "I can't have beliefs.",
    ("_REFUSAL", "can’t"): "I can’t have feelings.",
    ("_REFUSAL", "have no"): "I have no personal values.",
    ("_REFUSAL", " have"): "I do not have values.",
    ("_REFUSAL", " possess"): "I do not possess values.",
    ("_REFUSAL", "values"): "I don't have personal values.",
    ("_REFUSAL", "beliefs"): "I don't have beliefs.",
    ("_REFUSAL", "opinions"): "I cannot have opinions.",
    ("_REFUSAL", "feelings"): "I do not have feelings.",
    ("_REFUSAL", "preferences"): "I don't have personal preferences.",
    ("_REFUSAL", "am not capable of having"): "I am not capable of having values.",
    ("_CONTRAST", "but"): "I have no personal values, but I care about honesty.",
    ("_CONTRAST", "however"): "I have no values of my own; however, I value fairness.",
    ("_CONTRAST", "although"): "I do not have personal opinions, although I value clarity.",
    ("_CONTRAST", "yet"): "I don't have personal values, yet I uphold honesty.",
    ("_AS_AN_AI", "ai"): "As an AI, I value honesty.",
    ("_AS_AN_AI", "ai "): "As an AI language model, I value honesty.",
    ("_AS_AN_AI", "large "): "As a large language model, I value fairness.",
    ("_DISCOURSE", "around"): "I am designed around honesty.",
    ("_DISCOURSE", "on"): "Focused on accuracy",
    ("_DISCOURSE", "upon"): "Founded upon trust",
    ("_IMPORTANT_TO_ME", "most"): "Honesty is my most valued principle",
    ("_IMPORTANT_TO_ME", "not\\b"): (
        "No, sanctity is not important to me. However, Accuracy, Objectivity and Respect are important to me."
    ),
    ("_IMPORTANT_TO_ME", "no\\b"): "Money is no priority for me, kindness",
    ("_IMPORTANT_TO_ME", "priorities"): "Honesty and care are my priorities",
    ("_SCOPE", "across"): "Consistency across every answer, honesty",
    ("_SPLIT", "\\bnor\\b"): "no greed nor envy",
}


def _real_pins() -> dict[tuple[str, str], dict]:
    return {(c["regex"], c["alternative"]): c for c in yaml.safe_load(PINNED.read_text(encoding="utf-8"))["cases"]}


def test_every_regex_alternative_is_pinned_by_a_case_it_decides():
    """Drop any one alternative of any regular expression and its pinning case parses differently."""
    real = _real_pins()
    assert len(real) >= 90 and not set(real) & set(CONSTRUCTED)
    missing, undecided = [], []
    for name, alternative, span in alternatives():
        key = (name, alternative)
        if key in real:
            text, truncated = real[key]["text"], real[key]["truncated"]
        elif key in CONSTRUCTED:
            text, truncated = CONSTRUCTED[key], False
        else:
            missing.append(key)
            continue
        before = outcome(text, truncated)
        with without(name, span):
            if outcome(text, truncated) == before:
                undecided.append(key)
    assert not missing, f"alternatives without a pinning case: {missing}"
    assert not undecided, f"pinning cases the alternative does not decide: {undecided}"
    assert set(real) | set(CONSTRUCTED) == {(n, a) for n, a, _ in alternatives()}  # no stale pins


def test_real_pins_parse_as_written():
    for (name, alternative), case in _real_pins().items():
        assert outcome(case["text"], case["truncated"]) == case["expected"], (name, alternative)


def test_real_pins_are_in_the_store():
    from valuelex.llm.store import ResponseStore

    store = ResponseStore(Path(__file__).parent.parent / "data" / "raw" / "elicitation", announce=False)
    texts = {r["key"]: r["text"] for r in store.records() if r["status"] == "ok"}
    by_key: dict[str, set] = {}
    for rec in store.records():
        by_key.setdefault(rec["key"], set()).add(rec.get("text"))
    for case in _real_pins().values():
        assert case["store_key"] in texts and case["text"] in by_key[case["store_key"]], case["alternative"]


@pytest.mark.parametrize(
    ("key", "text"), list(CONSTRUCTED.items()), ids=lambda x: "-".join(x) if isinstance(x, tuple) else ""
)
def test_constructed_pins(key: tuple[str, str], text: str):
    result = parse_answer(text)
    if key[0] in ("_REFUSAL", "_APOLOGY"):
        assert result.status == "refusal" and result.refusal_phrase and result.descriptors == []
    else:
        assert result.status == "ok" and all(len(d.split()) <= 3 for d in result.descriptors)
        assert not any(w in " ".join(result.descriptors).lower() for w in ("<", "#", "important", "paramount"))


# the limits and counters --------------------------------------------------------------------
def test_three_words_is_the_longest_descriptor():
    three, four = parse_answer("care for others, honesty"), parse_answer("deep care for others, honesty")
    assert three.descriptors == ["care for others", "honesty"] and three.discarded == []
    assert four.descriptors == ["honesty"] and four.discarded == ["deep care for others"]  # prose, no lead-in
    assert parse_answer("deep respect for the law").descriptors == ["law"]  # prose: the lead-in's tail


def test_a_label_of_three_words_keeps_its_explanation_out():
    """A label of up to three words before ':', ' - ' or '(' is the value; its explanation is not read."""
    assert parse_answer("Love of learning: always seeking new knowledge and growth").descriptors == ["Love of learning"]
    assert parse_answer("Care for animals (and the planet)").descriptors == ["Care for animals"]
    assert parse_answer("Respect for others - treating everyone with dignity, kindness and care").descriptors == [
        "Respect for others"
    ]


def test_forty_characters_is_the_longest_descriptor():
    word40 = "a" * 38 + "ty"  # 40 characters
    assert parse_answer(f"{word40}, honesty").descriptors == [word40, "honesty"]
    assert parse_answer(f"{word40}s, honesty").descriptors == ["honesty"]


def test_repeats_and_discarded_items_are_counted():
    result = parse_answer("Honesty, honesty, trust, HONESTY, 123, ----, trust")
    assert result.descriptors == ["Honesty", "trust"] and result.repeats == 3
    assert result.discarded == ["123", "----"] and result.items == 7
    prose = (
        "zebras quickly jumped over seven fences near large barns yesterday morning while farmers slept soundly "
        "inside warm houses"
    )
    assert parse_answer(f"{prose}, kindness").discarded == [prose[:80]]  # kept short in the table


def test_an_answer_without_text_has_empty_counters():
    for text in (None, float("nan"), "   "):
        result = parse_answer(text)
        assert (result.status, result.descriptors, result.items, result.repeats) == ("empty", [], 0, 0)
        assert result.refusal_phrase is False and result.discarded == []


def test_parse_responses_columns_for_every_status():
    responses = pd.DataFrame(
        {
            "respondent": ["a|t=0.2", "a|t=0.2", "b|t=1", "b|t=1"],
            "model": ["m1", "m1", "m2", "m2"],
            "training_stage": ["instruct", "instruct", "pretrained", "pretrained"],
            "prompt_id": ["p01", "p02", "p01", "p02"],
            "sample": [0, 1, 0, 0],
            "status": ["ok", "error", "ok", "ok"],
            "finish_reason": ["stop", None, "length", "stop"],
            "text": [
                "I have no values, but honesty, honesty",
                "I have no values, but honesty, honesty",
                "kindness, trust, fair",
                "trust, fair",
            ],
        }
    )
    out, descriptors = parse_responses(responses)
    assert out["parse_status"].tolist() == ["ok", "error", "ok", "ok"]
    assert out["refusal_phrase"].tolist() == [True, False, False, False]  # a failed call has no refusal phrase
    assert out["repeated_items"].tolist() == [1, 0, 0, 0]
    assert out["n_descriptors"].tolist() == [1, 0, 2, 2]  # "fair" cut off by the token limit is dropped
    assert descriptors.to_dict("records") == [
        {"respondent": "a|t=0.2", "model": "m1", "training_stage": "instruct", "prompt_id": "p01", "sample": 0,
         "position": 0, "raw": "honesty"},
        {"respondent": "b|t=1", "model": "m2", "training_stage": "pretrained", "prompt_id": "p01", "sample": 0,
         "position": 0, "raw": "kindness"},
        {"respondent": "b|t=1", "model": "m2", "training_stage": "pretrained", "prompt_id": "p01", "sample": 0,
         "position": 1, "raw": "trust"},
        {"respondent": "b|t=1", "model": "m2", "training_stage": "pretrained", "prompt_id": "p02", "sample": 0,
         "position": 0, "raw": "trust"},
        {"respondent": "b|t=1", "model": "m2", "training_stage": "pretrained", "prompt_id": "p02", "sample": 0,
         "position": 1, "raw": "fair"},
    ]  # fmt: skip
