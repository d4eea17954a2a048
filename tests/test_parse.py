"""Parsing answers into value descriptors: constructed cases and real answers of the local panel."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

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
