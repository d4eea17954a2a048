"""The log-probability judge and the stance scorer: parsing llama.cpp's log-probabilities, replay, the head."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import IN_CI
from valuelex import projective as pj
from valuelex.core import paths
from valuelex.core.errors import ConfigError
from valuelex.llm.cards import load_model_cards
from valuelex.llm.local import gguf_path
from valuelex.llm.store import ResponseStore, StoreMiss

CASES = pd.DataFrame(
    {
        "stem": ["Protecting the environment is...", "Protecting the environment is...", "I hate..."],
        "completion": ["a duty we owe to future generations.", "none of my concern.", "people."],
        "subdimension": ["Idealistic", "Idealistic", "Social"],
    }
)


def _chat_logprobs(probs: dict[str, float]) -> dict:
    """The shape llama.cpp's chat endpoint returns for logprobs=True, top_logprobs=N."""
    top = [{"token": t, "logprob": math.log(p), "bytes": None} for t, p in probs.items()]
    first = max(probs, key=probs.get)
    return {"content": [{"token": first, "logprob": math.log(probs[first]), "bytes": None, "top_logprobs": top}]}


def _completion_logprobs(probs: dict[str, float]) -> dict:
    """The shape of the completions endpoint with logprobs=N."""
    return {"tokens": ["x"], "token_logprobs": [-0.1], "top_logprobs": [{t: math.log(p) for t, p in probs.items()}]}


@pytest.mark.parametrize("shape", [_chat_logprobs, _completion_logprobs])
def test_answer_distribution_reads_both_shapes(shape) -> None:
    probs, mass = pj.answer_distribution(shape({"4": 0.5, " 4": 0.1, "5": 0.2, "Score": 0.15, "7": 0.05}))
    assert mass == pytest.approx(0.8)  # "Score" and the off-scale "7" do not count
    np.testing.assert_allclose(probs, [0, 0, 0, 0.75, 0.25])
    assert float(probs @ np.arange(1, 6)) == pytest.approx(4.25)


def test_answer_distribution_of_odd_answers() -> None:
    assert pj.answer_distribution(None)[1] == 0.0
    assert pj.answer_distribution({"content": []})[1] == 0.0
    only = {"content": [{"token": "2", "logprob": math.log(0.9), "top_logprobs": []}]}  # no top list
    probs, mass = pj.answer_distribution(only)
    assert mass == pytest.approx(0.9) and probs[1] == pytest.approx(1.0)
    probs, mass = pj.answer_distribution(_chat_logprobs({"**": 0.7, "3": 0.3}))
    assert mass == pytest.approx(0.3) and probs[2] == pytest.approx(1.0)


def _store_answers(judge: pj.LogprobJudge, root: Path, answers: list[dict | None]) -> None:
    store = ResponseStore(root)
    card = judge.cards[judge.judge_model]
    for request, logprobs in zip(judge.requests(CASES), answers, strict=True):
        record = {
            "key": request.key(card),
            "request": request.canonical(card),
            "attempt": 1,
            "status": "ok",
            "final": True,
            "text": "4",
            "usable": True,
            "timestamp": "2026-01-01T00:00:00",
        }
        if logprobs is not None:
            record["logprobs"] = logprobs
        store.append(record)


def test_logprob_judge_replays_and_flags_off_scale(tmp_path: Path) -> None:
    judge = pj.LogprobJudge(mode="replay", store=ResponseStore(tmp_path), progress=False)
    requests = judge.requests(CASES)
    assert all(r.max_tokens == 1 and r.temperature == 0 for r in requests)
    assert dict(requests[0].extra) == {"logprobs": True, "top_logprobs": 20}  # the card's chat API
    assert requests[0].canonical(judge.cards[judge.judge_model])["extra"]["top_logprobs"] == 20
    assert 'Completion: "none of my concern."' in requests[1].messages[1][1]
    with pytest.raises(StoreMiss, match="3 of 3 requests"):
        judge.score(CASES)
    nothing = judge.score(CASES, stored_only=True)  # replay what is there: nothing yet
    assert (nothing["status"] == "not judged").all() and not nothing["valid"].any()
    _store_answers(judge, tmp_path, [_chat_logprobs({"5": 0.9, "4": 0.1}), _chat_logprobs({"1": 0.8, "2": 0.2}), None])
    scored = pj.LogprobJudge(mode="replay", store=ResponseStore(tmp_path), progress=False).score(CASES)
    assert scored["status"].tolist() == ["ok", "ok", "off-scale"]
    assert scored["judge_expected"].iloc[0] == pytest.approx(4.9)
    assert scored["score"].iloc[1] == pytest.approx((1.2 - 1) / 4)
    assert np.isnan(scored["score"].iloc[2]) and not scored["valid"].iloc[2]


def test_judge_calls_are_ordered_so_that_neighbours_share_the_longest_prompt_prefix() -> None:
    """llama.cpp re-evaluates only what differs from the prompt before: one rubric's calls come together,
    and within it one stem's (cases in panel order alternate stems and sub-dimensions)."""
    stems = ["Protecting the environment is...", "At my best, I..."]
    cases = pd.DataFrame(
        {
            "stem": [stems[(i // 2) % 2] for i in range(8)],
            "completion": [f"answer number {i}." for i in range(8)],
            "subdimension": ["Idealistic", "Ethical", "Idealistic", "Ethical"] * 2,
        }
    )
    judge = pj.LogprobJudge(mode="replay", store=ResponseStore(paths.DATASET / "judge"), progress=False)
    requests = judge.requests(cases)
    order = pj.judge.call_order(requests)
    assert sorted(order) == list(range(8))
    asked = cases.iloc[order]
    assert list(asked["subdimension"]) == ["Ethical"] * 4 + ["Idealistic"] * 4
    runs = asked.groupby("subdimension")["stem"].apply(lambda s: int((s != s.shift()).sum()))
    assert runs.to_dict() == {"Ethical": 2, "Idealistic": 2}  # each sub-dimension's two stems come one after the other

    def shared(i: int, j: int) -> int:
        a, b = requests[i].messages[1][1], requests[j].messages[1][1]
        return next((k for k, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))

    by_rubric = sorted(range(8), key=lambda i: (requests[i].prompt_id, i))  # the order before issue 22
    assert sum(map(shared, order, order[1:])) > sum(map(shared, by_rubric, by_rubric[1:]))


def test_stance_scorer_head_and_its_checks(tmp_path: Path) -> None:
    judge = pj.LogprobJudge(mode="replay", store=ResponseStore(tmp_path), progress=False)
    _store_answers(judge, tmp_path, [_chat_logprobs({"5": 0.9, "4": 0.1}), _chat_logprobs({"1": 1.0}), None])
    stance = pj.StanceScorer(calibration=None, store=ResponseStore(tmp_path), progress=False)
    with pytest.raises(ConfigError, match="has no head"):
        stance.score(CASES)
    head = pj.StanceCalibration(0.1, 1.5, 2.0, pj.DEFAULT_JUDGE, judge.rubrics.logprob_version, "1", "test", 3)
    path = pj.save_stance_calibration(head, tmp_path / "head.yaml")
    assert pj.load_stance_calibration(path) == head
    scored = pj.StanceScorer(calibration=path, store=ResponseStore(tmp_path), progress=False).score(CASES)
    expected = head.apply(scored["judge_expected"].iloc[:2].to_numpy(), scored["contrast"].iloc[:2].to_numpy())
    np.testing.assert_allclose(scored["score"].iloc[:2], expected)
    assert scored["score"].iloc[0] > 0.9 > 0.1 > scored["score"].iloc[1]
    assert np.isnan(scored["score"].iloc[2])  # off-scale judge: no score, never the embedding alone
    stale = pj.save_stance_calibration(
        pj.StanceCalibration(0, 1, 1, "other-judge", "1", "1", "x", 1), tmp_path / "stale.yaml"
    )
    with pytest.raises(ConfigError, match="field 'judge_model' is 'other-judge'"):
        pj.StanceScorer(calibration=stale, store=ResponseStore(tmp_path))
    with pytest.raises(ConfigError, match="stance scorer's head is missing"):
        pj.StanceScorer(calibration=tmp_path / "none.yaml", store=ResponseStore(tmp_path))


def test_shipped_head_is_fitted_on_our_development_data() -> None:
    head = pj.load_stance_calibration()
    assert head.fitted_on.startswith("dev rows of projective_labelled.csv")
    assert head.w_judge > 0 and head.n_cases >= 90


@pytest.mark.llama
def test_llama_cpp_returns_answer_token_logprobs(tmp_path: Path) -> None:
    """The real server (SmolLM2) through the LLM layer: the chat endpoint's top_logprobs reach the store."""
    card = load_model_cards()["smollm2-135m-instruct"]
    if importlib.util.find_spec("llama_cpp") is None or not gguf_path(card).exists():
        if IN_CI:
            pytest.fail("llama-cpp-python or the SmolLM2 GGUF is missing (./run_tests.sh installs them)")
        pytest.skip("llama-cpp-python or the SmolLM2 GGUF is missing")
    judge = pj.LogprobJudge("smollm2-135m-instruct", mode="live", store=ResponseStore(tmp_path), progress=False)
    scored = judge.score(CASES.iloc[:2])
    record = ResponseStore(tmp_path).get(scored["judge_key"].iloc[0])
    top = record["logprobs"]["content"][0]["top_logprobs"]
    assert len(top) == pj.judge.TOP_LOGPROBS and all("token" in t and t["logprob"] <= 0 for t in top)
    assert (scored["answer_mass"] > 0).all()  # the small model still puts some mass on the digits
    again = pj.LogprobJudge("smollm2-135m-instruct", mode="replay", store=ResponseStore(tmp_path), progress=False)
    pd.testing.assert_series_equal(again.score(CASES.iloc[:2])["answer_mass"], scored["answer_mass"])
