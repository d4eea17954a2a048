"""A run's own response store over the read-only committed dataset, and adopting a run's answers into it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from valuelex.core import paths
from valuelex.llm import runstore
from valuelex.llm.cards import ModelCard
from valuelex.llm.request import Request
from valuelex.llm.runner import LLMRunner
from valuelex.llm.runstore import LayeredStore, NothingToAdopt, adopt, open_store
from valuelex.llm.store import ResponseStore, request_key
from valuelex.settings import load_run

CARD = ModelCard(
    name="m",
    provider="openai_compatible",
    model="served-m",
    family="F",
    params_b=1.0,
    training_stage="instruct",
    price_input=1.0,
    price_output=1.0,
    base_url="http://127.0.0.1:9/v1",
)


def request(i: int) -> Request:
    return Request(
        "m", (("user", f"question {i}"),), 0.7, 0.95, 16, seed=1, sample=0, prompt_id=f"p{i}", prompt_version="v1"
    )


def record(i: int, status: str = "ok", text: str = "honesty", attempt: int = 1) -> dict:
    canon = request(i).canonical(CARD)
    rec = {
        "key": request_key(canon),
        "request": canon,
        "attempt": attempt,
        "status": status,
        "final": True,
        "timestamp": f"2026-01-01T00:00:0{attempt}.000+00:00",
        "text": text if status == "ok" else None,
        "usage": {"prompt_tokens": 5, "completion_tokens": 1},
    }
    if status == "error":
        rec["error"] = {"type": "http_500", "status_code": 500, "message": "boom", "raw_body": "{}"}
    return rec


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*"))}


def test_a_layered_store_replays_its_base_and_writes_only_its_own(tmp_path: Path):
    base = ResponseStore(tmp_path / "base")
    base.append(record(0))
    base.append(record(1))
    before = digest(tmp_path / "base")

    store = LayeredStore(tmp_path / "own", tmp_path / "base")
    assert store.get(record(0)["key"])["text"] == "honesty" and record(1)["key"] in store and len(store) == 2
    runner = LLMRunner({"m": CARD}, store, mode="live", progress=False)
    assert [r.prompt_id for r in runner.misses([request(i) for i in range(3)])] == ["p2"]  # only what neither has
    assert runner.plan([request(i) for i in range(3)]).to_call == 1

    store.append(record(2, text="care"))
    with store.run_lock():  # the run lock is the own store's: the base is never locked
        pass
    assert digest(tmp_path / "base") == before  # never written
    assert sorted(digest(tmp_path / "own")) == [".run.lock", "m.jsonl"]
    again = LayeredStore(tmp_path / "own", tmp_path / "base")
    assert len(again) == 3 and again.get(record(2)["key"])["text"] == "care"
    assert len(again.records()) == 3 and again.usage_by_model()["m"]["final"] == 3


def test_a_success_wins_over_an_error_in_either_layer(tmp_path: Path):
    ResponseStore(tmp_path / "base").append(record(0, status="error"))
    ResponseStore(tmp_path / "base").append(record(1))
    own = ResponseStore(tmp_path / "own")
    own.append(record(0, text="asked again"))
    own.append(record(1, status="error"))
    store = LayeredStore(tmp_path / "own", tmp_path / "base")
    assert store.get(record(0)["key"])["text"] == "asked again"  # the base's error was asked again
    assert store.get(record(1)["key"])["status"] == "ok"  # the base's answer, not a later error
    assert len(store.final_records()) == 2


def test_damaged_lines_of_the_base_are_reported_not_missing(tmp_path: Path):
    ResponseStore(tmp_path / "base").append(record(0))
    shard = tmp_path / "base" / "m.jsonl"
    shard.write_bytes(shard.read_bytes().replace(b'"honesty"', b'"honesty'))  # damaged in place
    store = LayeredStore(tmp_path / "own", tmp_path / "base", announce=False)
    assert store.get(record(0)["key"]) is None and store.damaged(record(0)["key"])


def test_open_store_layers_the_base_it_is_given(tmp_path: Path):
    ResponseStore(tmp_path / "dataset" / "elicitation").append(record(0))
    assert type(open_store(tmp_path / "own" / "elicitation")) is ResponseStore  # the committed run: no base
    store = open_store(tmp_path / "own" / "elicitation", tmp_path / "dataset" / "elicitation")
    assert isinstance(store, LayeredStore) and record(0)["key"] in store
    same = tmp_path / "dataset" / "elicitation"
    assert type(open_store(same, same)) is ResponseStore  # its own base: no layer


def _run(tmp_path: Path):
    (tmp_path / "mine.yaml").write_text(f"mode: live\noutput: {tmp_path / 'out'}\n", encoding="utf-8")
    return load_run(tmp_path / "mine.yaml")


def test_adopt_appends_a_runs_answers_to_the_dataset_once(tmp_path: Path):
    run = _run(tmp_path)
    assert run.raw_dir == tmp_path / "out" / "raw" and run.base_dir == paths.DATA / "raw"
    dataset = tmp_path / "dataset"
    ResponseStore(dataset / "elicitation").append(record(0))
    own = ResponseStore(run.raw_dir / "elicitation")
    own.append(record(0))  # the same record: already in the dataset
    own.append(record(1, status="error", attempt=1))
    own.append(record(1, attempt=2, text="care"))
    said: list[str] = []
    result = adopt(run, dataset=dataset, say=said.append)
    assert result.records == 2 and result.already == 1
    assert result.answers["elicitation"]["m"] == 2  # both attempts were final records; the second is the answer
    assert any("adopted 2 record(s)" in line for line in said)
    store = ResponseStore(dataset / "elicitation")
    assert len(store) == 2 and store.get(record(1)["key"])["text"] == "care"
    before = digest(dataset / "elicitation")
    assert adopt(run, dataset=dataset, say=said.append).records == 0  # adopting twice changes nothing
    assert digest(dataset / "elicitation") == before
    assert "nothing new" in said[-1]


def test_adopt_refuses_the_committed_run_and_a_run_without_answers(tmp_path: Path):
    with pytest.raises(NothingToAdopt, match="is the committed run"):
        adopt(load_run("default"), dataset=tmp_path)
    with pytest.raises(NothingToAdopt, match="has no answers of its own"):
        adopt(_run(tmp_path), dataset=tmp_path / "dataset")
    assert issubclass(runstore.NothingToAdopt, runstore.UserError)  # one line, exit code 2
