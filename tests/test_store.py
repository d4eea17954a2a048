"""The response store: canonical keys, append/reload, damaged files, concurrent writers."""

from __future__ import annotations

import json
import multiprocessing
from dataclasses import replace
from pathlib import Path

import pytest

from valuelex.config import ModelCard
from valuelex.llm import Request
from valuelex.store import ResponseStore, canonical_json, request_key, validate_record

CARD = ModelCard(
    name="m",
    provider="openai_compatible",
    model="served-m",
    family="F",
    params_b=1.0,
    training_stage="instruct",
    price_input=0.0,
    price_output=0.0,
    base_url="http://127.0.0.1:1111/v1",
    api_key_env="SOME_KEY",
)
REQ = Request(
    "m",
    (("system", "Be brief."), ("user", "What do you value?")),
    0.7,
    0.95,
    64,
    seed=11,
    sample=0,
    prompt_id="p1",
    prompt_version="v1",
)


def record(
    req: Request = REQ, *, final: bool = True, text: str = "honesty", attempt: int = 1, status: str = "ok"
) -> dict:
    canon = req.canonical(CARD)
    return {
        "key": request_key(canon),
        "request": canon,
        "attempt": attempt,
        "status": status,
        "final": final,
        "timestamp": "2026-01-01T00:00:00.000+00:00",
        "text": text,
        "usage": {"prompt_tokens": 5, "completion_tokens": 1},
    }


def requests(n: int, tag: str = "") -> list[Request]:
    return [replace(REQ, messages=(("user", f"question {tag}{i}"),), prompt_id=f"p{i}") for i in range(n)]


# canonical hashing ----------------------------------------------------------------------
def test_canonical_json_and_key_are_stable_across_dict_order():
    a = {"b": 1, "a": {"y": [1, 2], "x": "é"}}
    b = {"a": {"x": "é", "y": [1, 2]}, "b": 1}
    assert canonical_json(a) == canonical_json(b) == '{"a":{"x":"é","y":[1,2]},"b":1}'
    assert request_key(a) == request_key(b)
    assert len(request_key(a)) == 32 and int(request_key(a), 16) >= 0
    # the key is a pure function of the content: pinned so an accidental format change is caught
    assert request_key({"a": 1}) == "015abd7f5cc57a2dd94b7590f04ad808"


def test_key_depends_on_what_changes_the_answer():
    base = REQ.key(CARD)
    assert REQ.key(CARD) == base
    for changed in (
        replace(REQ, sample=1),
        replace(REQ, prompt_version="v2"),
        replace(REQ, prompt_id="p2"),
        replace(REQ, temperature=0.2),
        replace(REQ, top_p=1.0),
        replace(REQ, seed=23),
        replace(REQ, max_tokens=65),
        replace(REQ, messages=(("user", "What do you value?"),)),
    ):
        assert changed.key(CARD) != base, changed
    assert REQ.key(replace(CARD, model="another-served-id")) != base
    assert REQ.key(replace(CARD, api="completions", prompt_template="Q: {user}\nA:")) != base


def test_key_ignores_the_endpoint_and_number_spelling():
    moved = replace(CARD, base_url="http://127.0.0.1:2222/v1", api_key_env="OTHER_KEY", price_input=3.0)
    assert REQ.key(moved) == REQ.key(CARD)
    # a grid written as 1 or 1.0 is the same request
    assert replace(REQ, temperature=1, top_p=1).key(CARD) == replace(REQ, temperature=1.0, top_p=1.0).key(CARD)


# append and reload ----------------------------------------------------------------------
def test_append_then_reload(tmp_path: Path):
    store = ResponseStore(tmp_path)
    reqs = requests(3)
    store.append(record(reqs[0], final=False, status="error", text=None))
    for r in reqs:
        store.append(record(r, text=f"answer {r.prompt_id}", attempt=2))
    assert len(store) == 3 and store.get(reqs[0].key(CARD))["text"] == "answer p0"
    again = ResponseStore(tmp_path)
    assert again.stats.records == 4 and again.stats.final == 3 and not again.stats.issues
    assert [r["text"] for r in again.records()] == [None, "answer p0", "answer p1", "answer p2"]
    assert again.get(reqs[2].key(CARD))["schema"] == 1
    assert reqs[0].key(CARD) in again and requests(1, "x")[0].key(CARD) not in again
    lines = (tmp_path / "m.jsonl").read_text().splitlines()
    assert len(lines) == 4 and all(json.loads(line)["key"] for line in lines)


def test_first_final_wins_and_duplicates_are_counted(tmp_path: Path):
    store = ResponseStore(tmp_path)
    store.append(record(text="first"))
    store.append(record(text="second"))
    assert store.get(REQ.key(CARD))["text"] == "first"
    again = ResponseStore(tmp_path)
    assert again.get(REQ.key(CARD))["text"] == "first"
    assert again.stats.final == 1 and again.stats.duplicate_finals == 1 and again.stats.records == 2


def test_torn_last_line_is_reported_skipped_and_healed(tmp_path: Path):
    store = ResponseStore(tmp_path)
    reqs = requests(3)
    for r in reqs[:2]:
        store.append(record(r))
    shard = tmp_path / "m.jsonl"
    whole = canonical_json(record(reqs[2]))
    with open(shard, "a", encoding="utf-8") as fh:
        fh.write(whole[: len(whole) // 2])  # a writer killed mid-line
    torn = ResponseStore(tmp_path)
    assert torn.stats.final == 2
    assert [str(i) for i in torn.stats.issues] == [f"{shard}:3: torn last line (a writer was killed mid-write)"]
    torn.append(record(reqs[2], text="after the crash"))
    lines = shard.read_text().split("\n")
    assert lines[2] == whole[: len(whole) // 2] and json.loads(lines[3])["text"] == "after the crash"
    healed = ResponseStore(tmp_path)
    assert healed.stats.final == 3 and healed.get(reqs[2].key(CARD))["text"] == "after the crash"
    assert [(i.line, i.problem.startswith("not JSON")) for i in healed.stats.issues] == [(3, True)]


def test_corrupt_middle_line_does_not_poison_the_rest(tmp_path: Path):
    reqs = requests(4)
    shard = tmp_path / "m.jsonl"
    lines = [canonical_json({"schema": 1, **record(r)}) for r in reqs]
    lines[1] = lines[1].replace('"final":true', '"final":tru')
    lines.insert(3, '{"schema": 1, "key": "abc"}')
    shard.write_text("\n".join(lines) + "\n")
    store = ResponseStore(tmp_path)
    assert store.stats.final == 3
    assert {r["request"]["prompt_id"] for r in store.final_records()} == {"p0", "p2", "p3"}
    assert [(i.file, i.line) for i in store.stats.issues] == [(shard, 2), (shard, 4)]
    assert store.stats.issues[0].problem.startswith("not JSON")
    assert store.stats.issues[1].problem == "missing field 'request'"


def test_a_record_whose_key_does_not_match_its_request_is_rejected(tmp_path: Path):
    forged = record()
    forged["request"]["messages"][1]["content"] = "edited by hand"
    assert "does not match" in validate_record({"schema": 1, **forged})
    store = ResponseStore(tmp_path)
    with pytest.raises(ValueError, match="does not match"):
        store.append(forged)
    assert not (tmp_path / "m.jsonl").exists()
    (tmp_path / "m.jsonl").write_text(
        canonical_json({"schema": 1, **forged}) + "\n" + canonical_json({"schema": 1, **record()}) + "\n"
    )
    again = ResponseStore(tmp_path)
    assert again.stats.final == 1 and again.get(REQ.key(CARD))["text"] == "honesty"
    assert again.stats.issues[0].line == 1 and "does not match" in again.stats.issues[0].problem


def test_lines_not_written_by_the_store_are_still_checked_in_full(tmp_path: Path):
    """The loader's fast key check relies on the canonical layout; any other layout takes the full check."""
    rec = {"schema": 1, **record()}
    spaced = json.dumps(dict(reversed(list(rec.items()))))  # spaces, keys in another order
    forged = {"schema": 1, **record()}
    forged["request"]["sample"] = 7
    (tmp_path / "m.jsonl").write_text(spaced + "\n" + json.dumps(forged, indent=1).replace("\n", "") + "\n")
    store = ResponseStore(tmp_path)
    assert store.stats.final == 1 and store.get(REQ.key(CARD))["text"] == "honesty"
    assert [(i.line, "does not match" in i.problem) for i in store.stats.issues] == [(2, True)]


def test_malformed_records_are_refused_on_append(tmp_path: Path):
    store = ResponseStore(tmp_path)
    bad = record()
    del bad["final"]
    with pytest.raises(ValueError, match="missing field 'final'"):
        store.append(bad)
    with pytest.raises(ValueError, match="status"):
        store.append(record(status="maybe"))


def test_usage_by_model_counts_every_attempt(tmp_path: Path):
    store = ResponseStore(tmp_path)
    store.append(record(final=False, status="error", text=None))
    store.append(record(attempt=2))
    usage = ResponseStore(tmp_path).usage_by_model()["m"]
    assert dict(usage) == {"attempts": 2, "final": 1, "errors": 1, "prompt_tokens": 10, "completion_tokens": 2}


# concurrent writers ---------------------------------------------------------------------
def _writer(root: str, worker: int, n: int, barrier) -> None:
    store = ResponseStore(root)
    barrier.wait(30)  # every writer starts at once
    big = "x" * 20_000  # lines far longer than PIPE_BUF: atomicity must come from the lock
    for i, r in enumerate(requests(n, tag=f"w{worker}-")):
        store.append(record(r, text=f"{worker}-{i} {big if i % 5 == 0 else ''}"))


def test_concurrent_writer_processes_lose_and_mangle_nothing(tmp_path: Path):
    workers, n = 4, 150
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(workers)
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w, n, barrier)) for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    lines = (tmp_path / "m.jsonl").read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) - 1 == workers * n
    texts = {json.loads(line)["text"].split()[0] for line in lines[:-1]}
    assert texts == {f"{w}-{i}" for w in range(workers) for i in range(n)}
    store = ResponseStore(tmp_path)
    assert store.stats.final == workers * n and not store.stats.issues and store.stats.duplicate_finals == 0
    # the writes really interleaved (they did not run one process after the other)
    order = [int(json.loads(line)["text"].split("-")[0]) for line in lines[:-1]]
    assert sum(a != b for a, b in zip(order, order[1:], strict=False)) > workers
