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
    ("_IMPORTANT_TO_ME", "all\\s+"): "Honesty and trust are all important",
    ("_IMPORTANT_TO_ME", "very\\s+"): "Honesty is very important",
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
    ("_LEAD_IN", "am"): "Above all else I am trustworthy",
    ("_MARKDOWN", "#+\\s"): "### Honesty\n### Respect",
    ("_REFUSAL", "as an ai"): "As an AI, I have no personal values.",
    (
        "_REFUSAL",
        "i (do not|don't|cannot|can't) have (personal )?(values|beliefs|opinions|feelings)",
    ): "I do not have personal values.",
    ("_REFUSAL", "do not"): "I do not have values.",
    ("_REFUSAL", "don't"): "I don't have values.",
    ("_REFUSAL", "cannot"): "I cannot have opinions.",
    ("_REFUSAL", "can't"): "I can't have beliefs.",
    ("_REFUSAL", "values"): "I don't have personal values.",
    ("_REFUSAL", "beliefs"): "I don't have beliefs.",
    ("_REFUSAL", "opinions"): "I cannot have opinions.",
    ("_REFUSAL", "feelings"): "I do not have feelings.",
    ("_REFUSAL", "i am not capable of having"): "I am not capable of having values.",
    ("_REFUSAL", "i don't possess"): "I don't possess values.",
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
    if key[0] == "_REFUSAL":
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
                "As an AI, honesty, honesty",
                "As an AI, honesty, honesty",
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
