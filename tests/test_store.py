"""The response store: canonical keys, append/reload, damaged files (fuzzed), locks, concurrent writers."""

from __future__ import annotations

import fcntl
import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import threading
import time
import types
from dataclasses import replace
from pathlib import Path

import pytest

from valuelex.core import paths
from valuelex.llm.cards import ModelCard
from valuelex.llm.request import Request
from valuelex.llm.store import (
    ERROR_FIELDS,
    MESSAGE_FIELDS,
    PARAMS_FIELDS,
    RECORD_FIELDS,
    REQUEST_FIELDS,
    USAGE_FIELDS,
    LoadIssue,
    ResponseStore,
    StoreBusy,
    StoreStats,
    _safe_name,
    _stored_request_matches,
    canonical_json,
    request_key,
    validate_record,
)

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
    rec = {
        "key": request_key(canon),
        "request": canon,
        "attempt": attempt,
        "status": status,
        "final": final,
        "timestamp": "2026-01-01T00:00:00.000+00:00",
        "text": text,
        "usage": {"prompt_tokens": 5, "completion_tokens": 1},
    }
    if status == "error":
        rec["error"] = {"type": "http_500", "status_code": 500, "message": "boom", "raw_body": "{}"}
    return rec


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
    assert (store.stats.records, store.stats.final, store.stats.duplicate_finals) == (4, 3, 0)
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
    assert [i.key for i in store.stats.issues] == [reqs[1].key(CARD), None]


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


def test_reload_twice_gives_the_same_state(tmp_path: Path):
    store = ResponseStore(tmp_path)
    for i, r in enumerate(requests(3)):
        store.append(record(r, final=False, status="error", text=None))
        store.append(record(r, attempt=2, text=f"a{i}"))
    (tmp_path / "m.jsonl").open("a").write("not json\n")
    first = store.reload()
    second = store.reload()
    assert (second.records, second.final, second.duplicate_finals) == (first.records, first.final, 0) == (6, 3, 0)
    assert [str(i) for i in second.issues] == [str(i) for i in first.issues] and len(second.issues) == 1
    assert len(store) == 3 and len(store.records()) == 6 and len(store.final_records()) == 3


def test_state_in_memory_after_append_matches_a_reload(tmp_path: Path):
    store = ResponseStore(tmp_path / "new" / "study")  # the folder (and its parent) does not exist yet
    assert len(store) == 0 and store.stats.records == 0 and not store.stats.issues
    reqs = requests(3)
    store.append(record(reqs[0], final=False, status="error", text=None))
    assert reqs[0].key(CARD) not in store and store.get(reqs[0].key(CARD)) is None
    store.append(record(reqs[0], attempt=2, final=True, status="error", text=None))
    assert store.get(reqs[0].key(CARD))["status"] == "error"
    store.append(record(reqs[0], attempt=3, text="later success"))  # replaces the final error
    store.append(record(reqs[0], attempt=4, text="a second success"))  # ignored: first success wins
    store.append(record(reqs[1]))
    assert store.get(reqs[0].key(CARD))["text"] == "later success"
    assert (store.stats.records, store.stats.final, store.stats.duplicate_finals, len(store)) == (5, 2, 1, 2)
    assert [r["attempt"] for r in store.records()] == [1, 2, 3, 4, 1]
    assert all(r["schema"] == 1 for r in store.records())
    again = ResponseStore(tmp_path / "new" / "study")
    assert (again.stats.records, again.stats.final, again.stats.duplicate_finals) == (5, 2, 1)
    assert again.get(reqs[0].key(CARD))["text"] == "later success"
    assert [r["attempt"] for r in again.records()] == [1, 2, 3, 4, 1]


def test_a_corrupt_middle_line_and_a_torn_tail_together(tmp_path: Path, capsys):
    reqs = requests(4)
    lines = [canonical_json({"schema": 1, **record(r)}) for r in reqs]
    shard = tmp_path / "m.jsonl"
    shard.write_bytes(
        (lines[0] + "\n" + lines[1][:-30] + "\n" + lines[2] + "\n" + lines[3][:100]).encode()
    )  # line 2 cut (then healed by a later write), line 4 torn
    store = ResponseStore(tmp_path)
    assert {r["request"]["prompt_id"] for r in store.final_records()} == {"p0", "p2"}
    assert [(i.line, i.problem.split(" (")[0]) for i in store.stats.issues] == [(2, "not JSON"), (4, "torn last line")]
    assert store.damaged(reqs[1].key(CARD))[0].line == 2
    assert store.damaged(reqs[3].key(CARD))[0].line == 4 and store.damaged(reqs[0].key(CARD)) == []
    err = capsys.readouterr().err
    assert f"{shard}:2: not JSON" in err and f"{shard}:4: torn last line (a writer was killed mid-write)" in err


def test_bytes_that_are_not_utf8_are_reported_not_fatal(tmp_path: Path, capsys):
    reqs = requests(3)
    good = [canonical_json({"schema": 1, **record(r, text="honnêteté 😀")}).encode() for r in reqs]
    shard = tmp_path / "m.jsonl"
    cut_inside_a_character = good[2][: good[2].index("😀".encode()) + 2]
    shard.write_bytes(good[0] + b"\n" + b"\xff\xfe stray bytes\n" + good[1] + b"\n" + cut_inside_a_character)
    store = ResponseStore(tmp_path)
    assert store.stats.final == 2
    assert [str(i) for i in store.stats.issues] == [
        f"{shard}:2: not UTF-8 text (invalid byte 0xff at byte 1 of the line)",
        f"{shard}:4: torn last line (a writer was killed mid-write)",
    ]
    assert store.get(reqs[0].key(CARD))["text"] == "honnêteté 😀"
    assert f"{shard}:2: not UTF-8 text" in capsys.readouterr().err


def test_files_that_are_not_shards_are_reported(tmp_path: Path, capsys):
    ResponseStore(tmp_path).append(record())
    (tmp_path / "notes.txt").write_text("my notes\n")
    (tmp_path / "dump.json").write_text("[1, 2, 3]\n")
    (tmp_path / "dir.jsonl").mkdir()
    (tmp_path / ".run.lock").write_text("pid 1")  # hidden files are the store's own
    (tmp_path / "list.jsonl").write_text("[1, 2, 3]\n\n   \n")
    (tmp_path / "binary.jsonl").write_bytes(bytes(range(256)) * 4)
    store = ResponseStore(tmp_path)
    assert store.stats.final == 1
    issues = {(i.file.name, i.line): i.problem for i in store.stats.issues}
    assert issues[("notes.txt", None)] == "a file that is not a store shard (only *.jsonl files are read); ignored"
    assert issues[("dump.json", None)] == "a file that is not a store shard (only *.jsonl files are read); ignored"
    assert issues[("dir.jsonl", None)] == "a directory that is not a store shard (only *.jsonl files are read); ignored"
    assert issues[("list.jsonl", 1)] == "expected a JSON object, got list"
    binary = sorted(line for (name, line) in issues if name == "binary.jsonl")
    assert binary == [1, 2, 3, 4, 5]  # every line with bytes in it (the newlines split it into five)
    err = capsys.readouterr().err
    assert f"{tmp_path / 'notes.txt'}: a file that is not a store shard" in err
    assert f"{tmp_path / 'binary.jsonl'}:2-5: not UTF-8 text (4 lines)" in err  # consecutive lines grouped


def test_a_store_path_that_is_a_file(tmp_path: Path):
    path = tmp_path / "elicitation"
    path.write_text("oops")
    store = ResponseStore(path)
    assert [str(i) for i in store.stats.issues] == [f"{path}: is not a folder; nothing loaded"] and len(store) == 0


def test_unknown_fields_are_kept_and_known_ones_checked(tmp_path: Path):
    rec = {"schema": 1, **record(), "logprobs": [{"token": "x", "logprob": -0.1}]}
    (tmp_path / "m.jsonl").write_text(canonical_json(rec) + "\n")
    store = ResponseStore(tmp_path)
    assert store.get(REQ.key(CARD))["logprobs"] == [{"token": "x", "logprob": -0.1}]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"schema": 2}, "field 'schema' is 2, this version reads schema 1"),
        ({"key": "ABC"}, "field 'key' must be 32 lower-case hex digits"),
        ({"attempt": 0}, "field 'attempt' must be >= 1"),
        ({"attempt": True}, "field 'attempt' must be an integer, got bool"),
        ({"status": "maybe"}, "field 'status' must be ok, error or sent, got 'maybe'"),
        ({"status": "error"}, "a record with status error needs an 'error' object"),
        ({"usage": {"prompt_tokens": -1}}, "field 'usage' holds a negative token count"),
        ({"final": 1}, "field 'final' must be true or false, got int"),
        ({"cost_usd": True}, "field 'cost_usd' must be a number or null, got bool"),
    ],
)
def test_record_values_out_of_their_domain(change: dict, problem: str):
    assert validate_record({"schema": 1, **record(), **change}) == problem


def test_a_message_that_is_not_an_object():
    rec = {"schema": 1, **record()}
    rec["request"]["messages"] = ["just text"]
    assert validate_record(rec) == "field 'request.messages[0]' must be an object, got str"


def test_records_that_are_not_valid_unicode_are_refused_before_writing(tmp_path: Path):
    store = ResponseStore(tmp_path)
    with pytest.raises(ValueError, match="not valid Unicode text: surrogates not allowed"):
        store.append(record(text="honesty \ud83d"))
    assert not (tmp_path / "m.jsonl").exists() and len(store) == 0 and store.stats.records == 0


def test_summary_groups_runs_of_the_same_problem():
    f, g = Path("a.jsonl"), Path("b.jsonl")
    issues = [LoadIssue(f, n, f"not JSON (x at column {n})") for n in (1, 2, 3)]
    issues += [LoadIssue(f, 5, "not JSON (y)"), LoadIssue(f, 6, "not UTF-8 text (z)"), LoadIssue(g, 7, "not JSON (w)")]
    assert StoreStats(records=9, issues=issues).summary(Path("s")).splitlines() == [
        "response store s: 6 damaged line(s) or file(s) skipped, 9 records kept:",
        "  a.jsonl:1-3: not JSON (3 lines)",
        "  a.jsonl:5: not JSON (y)",
        "  a.jsonl:6: not UTF-8 text (z)",
        "  b.jsonl:7: not JSON (w)",
    ]


def test_issues_are_announced_once(tmp_path: Path, capsys):
    (tmp_path / "m.jsonl").write_text("garbage\n")
    store = ResponseStore(tmp_path)
    assert "m.jsonl:1: not JSON" in capsys.readouterr().err
    store.reload()
    assert capsys.readouterr().err == ""  # already shown
    ResponseStore(tmp_path, announce=False)
    assert capsys.readouterr().err == ""


# the run lock ---------------------------------------------------------------------------
def test_run_lock_is_exclusive_and_names_the_holder(tmp_path: Path):
    store, other = ResponseStore(tmp_path / "s"), ResponseStore(tmp_path / "s")
    with store.run_lock():
        with pytest.raises(StoreBusy) as err:
            with other.run_lock():
                pass
        message = str(err.value)
        assert message.startswith(
            f"the response store {tmp_path / 's'} is in use by another live run (pid {os.getpid()} on "
        )
        assert message.endswith("; let it finish or stop it, then run again")
    with other.run_lock():  # released
        assert (tmp_path / "s" / ".run.lock").read_text().startswith(f"pid {os.getpid()} on ")
    assert not other.stats.issues and not ResponseStore(tmp_path / "s").stats.issues  # the lock file is not a shard


# fuzzing the loader ---------------------------------------------------------------------
def _real_line() -> bytes:
    """A committed record with multi-byte characters (Hebrew letters in a SmolLM2 answer)."""
    for line in (paths.DATASET / "elicitation" / "smollm2-135m-instruct.jsonl").read_bytes().splitlines():
        if b'"key":"66345b580f5313d983e03f1f1d3c67e0"' in line:
            return line
    raise AssertionError("the committed record is missing")


# The record schema, written out here as the specification (not read from the module under test):
# (path into a record, required, what the loader says a field must be).
SCHEMA_SPEC: list[tuple[tuple, bool, str]] = [
    (("schema",), True, "an integer"),
    (("key",), True, "a string"),
    (("request",), True, "an object"),
    (("attempt",), True, "an integer"),
    (("status",), True, "a string"),
    (("final",), True, "true or false"),
    (("timestamp",), True, "a string"),
    (("usable",), False, "true or false"),
    (("text",), False, "a string or null"),
    (("refusal",), False, "a string or null"),
    (("finish_reason",), False, "a string or null"),
    (("served_model",), False, "a string or null"),
    (("response_id",), False, "a string or null"),
    (("usage",), False, "an object or null"),
    (("cost_usd",), False, "a number or null"),
    (("latency_s",), False, "a number or null"),
    (("error",), False, "an object or null"),
    (("request", "model"), True, "a string"),
    (("request", "messages"), True, "a list"),
    (("request", "params"), True, "an object"),
    (("request", "sample"), True, "an integer"),
    (("request", "prompt_id"), True, "a string"),
    (("request", "prompt_version"), True, "a string"),
    (("request", "model_id"), False, "a string"),
    (("request", "api"), False, "a string"),
    (("request", "prompt_template"), False, "a string or null"),
    (("request", "stop"), False, "a list"),
    (("request", "params", "temperature"), True, "a number"),
    (("request", "params", "top_p"), True, "a number"),
    (("request", "params", "max_tokens"), True, "an integer"),
    (("request", "params", "seed"), True, "an integer or null"),
    (("request", "messages", 0, "role"), True, "a string"),
    (("request", "messages", 0, "content"), True, "a string"),
    (("usage", "prompt_tokens"), False, "an integer or null"),
    (("usage", "completion_tokens"), False, "an integer or null"),
    (("error", "type"), True, "a string"),
    (("error", "message"), False, "a string or null"),
    (("error", "status_code"), False, "an integer or null"),
    (("error", "raw_body"), False, "a string or null"),
]
WRONG_VALUES = [None, True, 7, 2.5, "text", [1], {"a": 1}]
ACCEPTS = {
    "true or false": (bool,),
    "an integer": (int,),
    "a number": (int, float),
    "a string": (str,),
    "an object": (dict,),
    "a list": (list,),
    "null": (type(None),),
}


def _accepts(words: str, value: object) -> bool:
    types = tuple(t for phrase, ts in ACCEPTS.items() if phrase in words for t in ts)
    return bool in types if isinstance(value, bool) else isinstance(value, types)


def _name(path: tuple) -> str:
    return ".".join(f"[{p}]" if isinstance(p, int) else p for p in path).replace(".[", "[")


def _full_record() -> dict:
    base = {"schema": 1, **record(status="error", text=None)}
    base |= {"usable": False, "refusal": None, "finish_reason": None, "served_model": "s", "response_id": "r"}
    base |= {"cost_usd": 0.0, "latency_s": 0.1}
    base["request"]["stop"], base["request"]["prompt_template"] = ["\\n"], "{user}"
    base["key"] = request_key(base["request"])
    return base


def _with(rec: dict, path: tuple, value: object = None, delete: bool = False) -> dict:
    rec = json.loads(json.dumps(rec))
    target = rec
    for step in path[:-1]:
        target = target[step]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    if path[0] == "request" and len(path) > 1:
        rec["key"] = request_key(rec["request"])  # the key stays right: only the field is wrong
    return rec


def test_the_schema_spec_is_the_modules():
    tables = {(): RECORD_FIELDS, ("request",): REQUEST_FIELDS, ("request", "params"): PARAMS_FIELDS}
    tables |= {("request", "messages", 0): MESSAGE_FIELDS, ("usage",): USAGE_FIELDS, ("error",): ERROR_FIELDS}
    assert sorted(p for p, _, _ in SCHEMA_SPEC) == sorted((*k, name) for k, t in tables.items() for name in t)


@pytest.mark.parametrize(
    ("path", "required", "words"), SCHEMA_SPEC, ids=lambda x: _name(x) if isinstance(x, tuple) else ""
)
def test_fuzz_wrong_types_in_every_field(tmp_path: Path, path: tuple, required: bool, words: str):
    """Every field, every JSON type it must not have, and its absence: each reported with the field's name."""
    base = _full_record()
    assert validate_record(base) is None
    lines, expected = [], []
    needs_error = "a record with status error needs an 'error' object"  # the base record is a failed attempt
    for value in WRONG_VALUES:
        if _accepts(words, value) and not (path == ("error",) and value is None):
            continue
        lines.append(canonical_json(_with(base, path, value)))
        wrong = f"field '{_name(path)}' must be {words}, got {type(value).__name__}"
        expected.append(needs_error if path == ("error",) and value is None else wrong)
    missing = _with(base, path, delete=True)
    lines.append(canonical_json(missing))
    if required or path == ("error",):
        expected.append(needs_error if path == ("error",) else f"missing field '{_name(path)}'")
    (tmp_path / "m.jsonl").write_text("\n".join([*lines, canonical_json(base)]) + "\n")
    store = ResponseStore(tmp_path, announce=False)
    assert [i.problem for i in store.stats.issues] == expected
    assert store.stats.records == 1 + (not required and path != ("error",))  # and the one without an optional field


# details the tests above leave open ----------------------------------------------------------
def test_the_fast_key_check_recognises_lines_the_store_writes():
    rec = {"schema": 1, **record()}
    line = canonical_json(rec).encode()
    assert _stored_request_matches(line, rec["key"])
    with_id = canonical_json({**rec, "response_id": "r-1"}).encode()  # "request" is followed by response_id
    assert _stored_request_matches(with_id, rec["key"])
    assert _stored_request_matches(line, "0" * 32) is False  # another key: the full check decides
    assert _stored_request_matches(json.dumps(rec).encode(), rec["key"]) is False  # another layout
    assert _stored_request_matches(b'{"schema":1}', rec["key"]) is False


def test_a_damaged_record_is_filed_under_its_own_key(tmp_path: Path):
    """The key of a damaged but readable record is its top-level key, not one nested earlier in the line."""
    rec = {"schema": 1, **record(status="error", text=None)}
    rec["error"]["key"] = "f" * 32  # an extra field inside "error", which sorts before the record's "key"
    del rec["timestamp"]  # the damage
    line = canonical_json(rec)
    assert line.index('"key":"ffff') < line.index(f'"key":"{rec["key"]}"')
    (tmp_path / "m.jsonl").write_text(line + "\n")
    store = ResponseStore(tmp_path, announce=False)
    assert [i.key for i in store.stats.issues] == [rec["key"]] and store.damaged("f" * 32) == []


def test_new_shards_are_readable_by_all_and_writable_by_their_owner(tmp_path: Path):
    umask = os.umask(0o022)
    try:
        with ResponseStore(tmp_path / "new" / "study").run_lock():  # its folders are made as needed
            lock = tmp_path / "new" / "study" / ".run.lock"
            assert lock.stat().st_mode & 0o777 == 0o644
        ResponseStore(tmp_path / "a").append(record())  # in a folder that does not exist yet
        store = ResponseStore(tmp_path / "b")
        (tmp_path / "b").mkdir()
        store.append(record())  # in a folder that exists
    finally:
        os.umask(umask)
    for folder in ("a", "b"):
        assert (tmp_path / folder / "m.jsonl").stat().st_mode & 0o777 == 0o644


def test_shard_names_are_safe_file_names():
    assert _safe_name("qwen2.5-coder-0.5b-instruct") == "qwen2.5-coder-0.5b-instruct"
    assert _safe_name("meta/llama 3:8b") == "meta_llama_3_8b"


def test_a_shard_that_cannot_be_read_and_a_line_nested_too_deeply(tmp_path: Path):
    ResponseStore(tmp_path).append(record())
    (tmp_path / "gone.jsonl").symlink_to(tmp_path / "nowhere.jsonl")
    (tmp_path / "deep.jsonl").write_text("[" * 100_000 + "]" * 100_000 + "\n")
    store = ResponseStore(tmp_path, announce=False)
    assert store.stats.final == 1
    assert {(i.file.name, i.line, i.problem) for i in store.stats.issues} == {
        ("gone.jsonl", None, "cannot be read (No such file or directory); ignored"),
        ("deep.jsonl", 1, "not JSON (nested too deeply)"),
    }


def test_the_lock_file_is_rewritten_by_each_holder(tmp_path: Path, monkeypatch):
    store = ResponseStore(tmp_path)
    (tmp_path / ".run.lock").write_text("@" * 5000)  # left by an earlier, longer holder
    monkeypatch.setattr(sys, "argv", ["/usr/local/bin/python", "-m", "valuelex.elicit", *["--flag"] * 100])
    with store.run_lock():
        text = (tmp_path / ".run.lock").read_text()
        assert "@" not in text
        head, command = text.split(": ", 1)
        assert head.startswith(f"pid {os.getpid()} on ") and command.startswith("python -m valuelex.elicit --flag")
        assert len(command) == 200
        with pytest.raises(StoreBusy) as err:
            with ResponseStore(tmp_path).run_lock():
                pass
        assert f"({text})" in str(err.value)


def test_a_lock_file_that_is_not_utf8(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["python", "run.py", "--name", "caf\udce9"])  # a non-UTF-8 byte in argv
    store = ResponseStore(tmp_path)
    with store.run_lock():
        assert (tmp_path / ".run.lock").read_text(encoding="utf-8").endswith(": python run.py --name caf?")
    (tmp_path / ".run.lock").write_bytes(b"pid 7 \xff")
    with open(tmp_path / ".run.lock", "rb") as other:
        fcntl.flock(other.fileno(), fcntl.LOCK_EX)
        with pytest.raises(StoreBusy, match="in use by another live run \\(pid 7 \ufffd\\)"):
            with ResponseStore(tmp_path).run_lock():
                pass


def test_a_lock_held_before_its_holder_wrote_its_name(tmp_path: Path):
    (tmp_path / ".run.lock").write_text("")
    with open(tmp_path / ".run.lock", "rb") as other:
        fcntl.flock(other.fileno(), fcntl.LOCK_EX)
        with pytest.raises(StoreBusy, match=r"in use by another live run \(holder unknown\)"):
            with ResponseStore(tmp_path).run_lock():
                pass


# the slow ones last (they race real processes, wait on locks, or load the store thousands of times) -----
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


def test_the_writer_takes_the_file_lock(tmp_path: Path):
    """append waits while another process holds the shard's lock (deterministic, unlike racing writers)."""
    store = ResponseStore(tmp_path)
    store.append(record(requests(1)[0]))
    shard = tmp_path / "m.jsonl"
    size = shard.stat().st_size
    with open(shard, "rb") as other:
        fcntl.flock(other.fileno(), fcntl.LOCK_EX)
        writer = threading.Thread(target=store.append, args=(record(requests(2)[1]),))
        writer.start()
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline and shard.stat().st_size == size:
            time.sleep(0.02)
        assert shard.stat().st_size == size, "append wrote while another process held the lock"
        fcntl.flock(other.fileno(), fcntl.LOCK_UN)
    writer.join(10)
    assert not writer.is_alive() and ResponseStore(tmp_path).stats.final == 2


def test_the_loader_reads_only_complete_lines_of_a_live_writer(tmp_path: Path, capsys):
    """A line being written (the writer holds the lock) is not read half: the loader waits for it."""
    reqs = requests(2)
    shard = tmp_path / "m.jsonl"
    shard.write_text(canonical_json({"schema": 1, **record(reqs[0])}) + "\n")
    second = canonical_json({"schema": 1, **record(reqs[1])}) + "\n"
    loaded: list[ResponseStore] = []
    with open(shard, "a") as writer:
        fcntl.flock(writer.fileno(), fcntl.LOCK_EX)
        writer.write(second[:40])
        writer.flush()
        reader = threading.Thread(target=lambda: loaded.append(ResponseStore(tmp_path)))
        reader.start()
        reader.join(2.0)
        assert reader.is_alive(), "the loader read the file while a writer held its lock"
        writer.write(second[40:])
        writer.flush()
        fcntl.flock(writer.fileno(), fcntl.LOCK_UN)
    reader.join(10)
    assert loaded[0].stats.final == 2 and not loaded[0].stats.issues
    assert capsys.readouterr().err == ""


def test_a_killed_holder_releases_the_run_lock(tmp_path: Path):
    code = (
        "import sys, time; from valuelex.llm.store import ResponseStore\n"
        f"with ResponseStore({str(tmp_path)!r}).run_lock():\n    print('held', flush=True); time.sleep(60)"
    )
    env = {**os.environ, "PYTHONPATH": str(paths.ROOT)}
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    assert holder.stdout.readline().strip() == "held"  # type: ignore[union-attr]
    with pytest.raises(StoreBusy, match=f"pid {holder.pid} on "):
        with ResponseStore(tmp_path).run_lock():
            pass
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(10)
    holder.stdout.close()  # type: ignore[union-attr]
    with ResponseStore(tmp_path).run_lock():
        pass


def test_fuzz_truncation_at_every_byte_of_a_real_record(tmp_path: Path):
    line = _real_line()
    assert len(line) != len(line.decode("utf-8"))  # it has multi-byte characters to cut through
    other = canonical_json({"schema": 1, **record()}).encode()
    key = json.loads(line)["key"]
    key_end = line.index(key.encode()) + len(key) + 1
    shard = tmp_path / "m.jsonl"
    for cut in range(1, len(line)):
        # torn at the end of the file: reported as torn, the record before it kept
        shard.write_bytes(other + b"\n" + line[:cut])
        store = ResponseStore(tmp_path, announce=False)
        assert store.stats.final == 1 and store.get(REQ.key(CARD)) is not None, cut
        assert [(i.line, i.problem) for i in store.stats.issues] == [
            (2, "torn last line (a writer was killed mid-write)")
        ], cut
        assert [i.key for i in store.stats.issues] == [key if cut >= key_end else None], cut
        # healed by a later write: reported, the record after it kept
        shard.write_bytes(line[:cut] + b"\n" + other + b"\n")
        store = ResponseStore(tmp_path, announce=False)
        assert store.stats.final == 1 and len(store.stats.issues) == 1 and store.stats.issues[0].line == 1, cut
        assert store.stats.issues[0].problem.startswith(("not JSON", "not UTF-8 text")), cut
    shard.write_bytes(line + b"\n")
    assert ResponseStore(tmp_path, announce=False).get(key)["text"] == json.loads(line)["text"]


def test_fuzz_random_bytes_never_break_the_loader(tmp_path: Path):
    rng = random.Random(15)
    good = [canonical_json({"schema": 1, **record(r)}).encode() for r in requests(5)]
    alphabet = [b"{", b"}", b'"', b":", b",", b"[", b"]", b"\\", b"\n", b"\xff", b"\xc3", b"\x00", b"key", b" "]
    for trial in range(300):
        pieces = []
        for _ in range(rng.randint(0, 12)):
            kind = rng.random()
            if kind < 0.4:
                pieces.append(bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 80))))
            elif kind < 0.7:
                pieces.append(b"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40))))
            else:
                g = rng.choice(good)
                start = rng.randint(0, len(g))
                pieces.append(g[start : rng.randint(start, len(g))])
        garbage = b"".join(pieces).replace(b"\n", b"")
        lines = [garbage, *good[:2], garbage[::-1]]
        (tmp_path / "m.jsonl").write_bytes(b"\n".join(lines) + b"\n")
        store = ResponseStore(tmp_path, announce=False)  # never raises
        assert store.stats.final >= 2, trial  # the good lines survive whatever surrounds them
        nonblank = sum(bool(x.strip()) for x in lines)
        assert store.stats.records + len(store.stats.issues) == nonblank, trial
        assert all(i.line in (1, 4) for i in store.stats.issues), trial


# mutants of issue 19 ---------------------------------------------------------------------------
def test_an_intent_cannot_be_final_and_says_so(tmp_path: Path):
    intent = {"schema": 1, **record(), "status": "sent", "final": True}
    assert validate_record(intent) == "a record with status sent (a call's intent) cannot be final"
    with pytest.raises(ValueError, match="cannot be final"):
        ResponseStore(tmp_path).append({**record(), "status": "sent", "final": True})


def test_which_attempts_may_have_been_paid(tmp_path: Path):
    store = ResponseStore(tmp_path)
    reqs = requests(4, "paid")
    unpaid = {**record(reqs[0], status="error", final=True), "usage": None}
    store.append(unpaid)  # an HTTP 500 without usage: nothing charged
    store.append(record(reqs[1], final=False, text=""))  # an empty answer, re-asked: charged
    store.append({**record(reqs[2], status="error"), "usage": None, "error": {"type": "timeout", "message": "t"}})
    store.append({**record(reqs[3]), "status": "sent", "final": False})  # sent, outcome lost
    assert [store.maybe_paid(r.key(CARD)) for r in reqs] == [False, True, True, True]
    assert [store.lost(r.key(CARD)) for r in reqs] == [[], [], [], [1]]
    assert [store.last_attempt(r.key(CARD)) for r in reqs] == [1, 1, 1, 1]
    reloaded = ResponseStore(tmp_path)
    assert [reloaded.maybe_paid(r.key(CARD)) for r in reqs] == [False, True, True, True]
    assert reloaded.stats.sent == 1 and reloaded.stats.records == 3 and len(reloaded.records()) == 3


def test_a_mis_keyed_line_is_filed_under_its_key_and_under_its_requests_hash(tmp_path: Path):
    rec = {"schema": 1, **record()}
    forged = "f" * 32
    (tmp_path / "m.jsonl").write_text(canonical_json({**rec, "key": forged}) + "\n")
    store = ResponseStore(tmp_path, announce=False)
    (issue,) = store.stats.issues
    assert issue.key == forged and "does not match the hash" in issue.problem
    assert store.damaged(forged) == [issue] and store.damaged(rec["key"]) == [issue]


def test_good_type_signatures_are_remembered_up_to_a_cap(monkeypatch):
    import valuelex.llm.store as store_module

    rows, shapes = store_module._RECORD_ROWS, store_module._GOOD_SHAPES
    rows.good.clear()
    shapes.clear()
    assert validate_record({"schema": 1, **record()}) is None
    assert len(rows.good) == 1 and len(shapes) == 1  # the record's signature and shape, remembered
    assert validate_record({"schema": 1, **record(text="other")}) is None and len(rows.good) == len(shapes) == 1
    monkeypatch.setattr(store_module, "_MEMO_MAX", 1)
    assert validate_record({"schema": 1, **record(), "usage": None}) is None
    assert len(rows.good) == len(shapes) == 1


def test_a_record_of_a_known_shape_still_has_every_value_checked(monkeypatch):
    """The shape memo skips the type checks only: each value check answers as for a record never seen."""
    import valuelex.llm.store as store_module

    good = {"schema": 1, **record()}
    bad_values = [
        ({"schema": 2}, "field 'schema' is 2, this version reads schema 1"),
        ({"key": "A" * 32}, "field 'key' must be 32 lower-case hex digits"),
        ({"attempt": 0}, "field 'attempt' must be >= 1"),
        ({"status": "done"}, "field 'status' must be ok, error or sent, got 'done'"),
        ({"status": "sent"}, "a record with status sent (a call's intent) cannot be final"),
        ({"usage": {"prompt_tokens": -1, "completion_tokens": 1}}, "field 'usage' holds a negative token count"),
        ({"key": "f" * 32}, "field 'key' does not match the hash of 'request' (edited by hand?)"),
    ]
    for change, problem in bad_values:
        bad = {**good, **change}
        store_module._GOOD_SHAPES.clear()
        assert validate_record(bad) == problem  # never seen
        assert validate_record(good) is None
        assert store_module._shape(bad) in store_module._GOOD_SHAPES  # the same shape as the good record
        assert validate_record(bad) == problem, change
        line = canonical_json(bad).encode()
        assert validate_record(bad, line) == problem, change
    error = {**good, "status": "error", "error": None}  # no error object: its type is in the shape
    assert validate_record(error) == "a record with status error needs an 'error' object"


def test_a_known_shape_is_keys_and_types_so_a_renamed_field_is_checked_in_full():
    good = {"schema": 1, **record()}
    assert validate_record(good) is None
    renamed = {("Key" if k == "key" else k): v for k, v in good.items()}  # same types, a field missing
    assert validate_record(renamed) == "missing field 'key'"
    request = {("Model" if k == "model" else k): v for k, v in good["request"].items()}
    assert validate_record({**good, "request": request}) == "missing field 'request.model'"
    message = {"role": "user", "Content": "hi"}
    two = {**good["request"], "messages": [*good["request"]["messages"], message]}
    assert validate_record({**good, "request": two}) == "missing field 'request.messages[2].content'"
    proxy = {**good["request"], "messages": [types.MappingProxyType(m) for m in good["request"]["messages"]]}
    assert validate_record({**good, "request": proxy}) == (
        "field 'request.messages[0]' must be an object, got mappingproxy"
    )
    failed = {**good, "status": "error", "error": {"type": "http_500"}}
    assert validate_record(failed) is None
    assert validate_record({**failed, "error": {"type": 500}}) == "field 'error.type' must be a string, got int"
    usage = {"prompt_tokens": 5, "completion_tokens": "1"}
    assert validate_record({**good, "usage": usage}) == (
        "field 'usage.completion_tokens' must be an integer or null, got str"
    )


def test_the_loader_starts_no_garbage_collection_and_leaves_the_collector_as_it_was(tmp_path: Path):
    """Loading is a burst of new dicts that are all kept: the cyclic collector would walk them again and
    again (a third of the load's time at 50,000 records), so it is off while a shard is read."""
    import gc

    store = ResponseStore(tmp_path, announce=False)
    for req in requests(3000):
        store.append(record(req))
    collections: list[int] = []

    def count(phase: str, info: dict) -> None:
        if phase == "start":
            collections.append(info["generation"])

    gc.callbacks.append(count)
    try:
        loaded = ResponseStore(tmp_path, announce=False)
        assert len(loaded) == 3000 and gc.isenabled()
        assert collections == []
        gc.disable()
        ResponseStore(tmp_path, announce=False)
        assert not gc.isenabled()  # the caller's choice is kept
    finally:
        gc.enable()
        gc.callbacks.remove(count)


# issue 19: what the mutation run left alive ----------------------------------------------
def test_a_sent_record_cannot_be_final():
    sent = {"schema": 1, **record(), "status": "sent"}
    assert validate_record(sent) == "a record with status sent (a call's intent) cannot be final"
    assert validate_record({**sent, "final": False}) is None


def test_an_answer_makes_a_later_free_failure_a_give_up(tmp_path: Path):
    """An answered attempt (an empty answer, re-asked) was paid: the request's final error is a give-up."""
    store = ResponseStore(tmp_path)
    first = {k: v for k, v in record(final=False, text="").items() if k != "usage"}
    last = {k: v for k, v in record(attempt=2, status="error", text=None).items() if k != "usage"}
    store.append(first)
    store.append(last)
    for loaded in (store, ResponseStore(tmp_path)):
        assert loaded.maybe_paid(first["key"]) is True
    other = {k: v for k, v in record(requests(1, "free")[0], status="error", text=None).items() if k != "usage"}
    store.append(other)
    assert store.maybe_paid(other["key"]) is False  # an HTTP 500 and nothing else: it cost nothing


def test_a_mis_keyed_line_is_filed_under_its_key_and_under_its_request(tmp_path: Path):
    good = record()
    wrong = "f" * 32
    (tmp_path / "m.jsonl").write_text(canonical_json({"schema": 1, **good, "key": wrong}) + "\n")
    store = ResponseStore(tmp_path, announce=False)
    assert [i.line for i in store.damaged(wrong)] == [1] and [i.line for i in store.damaged(good["key"])] == [1]


def test_shards_are_the_files_read(tmp_path: Path):
    store = ResponseStore(tmp_path)
    store.append(record())
    store.append(record(replace(REQ, model="other")))
    (tmp_path / "folder.jsonl").mkdir()
    assert ResponseStore(tmp_path, announce=False).shards() == [tmp_path / "m.jsonl", tmp_path / "other.jsonl"]


def test_an_intent_alone_is_not_a_maybe_paid_attempt():
    from valuelex.llm.store import maybe_paid

    assert maybe_paid({"schema": 1, **record(), "status": "sent", "final": False}) is False  # its outcome counts


def test_an_error_that_reports_token_usage_may_have_been_paid():
    """An error of a type that is usually free (an HTTP 500) is still maybe paid when the server reported the
    tokens it used: it took the call (a surviving mutant of the whole mutation run ignored ``usage``)."""
    from valuelex.llm.store import maybe_paid

    charged = {"schema": 1, **record(status="error")}
    assert charged["error"]["type"] == "http_500" and charged["usage"]["completion_tokens"] == 1
    assert maybe_paid(charged) is True
    assert maybe_paid({**charged, "usage": None}) is False


def test_a_value_of_a_subclass_of_its_type_is_well_formed():
    """A record built in code may hold a subclass of a field's type (a str subclass, numpy's float64 for a
    float): it is accepted as its base type, like a JSON-decoded one (a surviving mutant required the exact type)."""

    class Text(str):
        pass

    rec = {"schema": 1, **record(text=Text("honesty"))}
    assert type(rec["text"]) is Text and validate_record(rec) is None
