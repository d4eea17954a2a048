"""The response store: append-only JSONL, one record per LLM call attempt. It is the dataset.

Layout: ``data/raw/<study>/<model>.jsonl``. Each line is one attempt with the canonical
request, the raw text, finish reason, usage, latency, time, and error or refusal.
Records are keyed by a hash of the canonical request (which includes the sample index, so
sampled answers replay too). An attempt that concludes a request (a usable answer, or the
last try after bounded retries and re-asks) has ``final: true``; the answer to a request is
its first final record. Failed attempts stay in the file as the log of what went wrong.

Writes are single ``write()`` calls of a whole line on an ``O_APPEND`` descriptor under an
exclusive ``flock``, and the loader reads each file under a shared ``flock``, so it only ever
sees complete lines of live writers. A process killed at any moment leaves at worst one torn
last line; the next writer starts on a fresh line. The loader reads bytes and checks every
line (UTF-8, JSON, every field's type, the key against the request's hash): a bad line is
reported with file, line and reason, on stderr and in ``stats.issues``, and the rest is kept.
A request whose only record is damaged is named as such (``damaged(key)``), not as missing; a
mis-keyed line (its key is not the hash of its request) is filed under both keys.

Before each call leaves, the runner writes a *sent* record (``status: "sent"``, never final): a
write-ahead intent. An intent with no outcome record of the same attempt is a call that was sent
and whose answer was lost (the run was killed while it was in flight): ``lost(key)`` lists such
attempts, so that a resume can tell a call that was maybe paid from one that was never sent.

A live run holds the store's run lock (``run_lock``): a second live run on the same store
stops at once with a message naming the holder, so two runs never pay for the same call.
"""

# Over 600 lines: the dataset's file format in one place: the record schema, its validation, the locked
# append-only writer and the replay reader. The reader's hot loop is kept inline for speed (docs/benchmarks.md:
# 60,427 records/s).

from __future__ import annotations

import fcntl
import gc
import hashlib
import json
import os
import re
import socket
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from ..core.errors import UserError

SCHEMA = 1
SHARD_SUFFIX = ".jsonl"
LOCK_FILE = ".run.lock"  # hidden: the loader skips dot files
STATUSES = ("ok", "error", "sent")  # sent: the write-ahead intent of a call, written before it leaves
# Error types of attempts that may have been charged: the server took the request and a model may have
# run (a 200 whose body was malformed, a deadline passed while waiting, a connection dropped after the
# request was sent). A refused connection, an HTTP error status or a request never built cost nothing.
MAYBE_PAID_ERRORS = frozenset({"malformed_response", "timeout", "connection"})
_NONE = type(None)
_NUM = (int, float)
# field: (accepted types, required). A bool is accepted only where bool is listed; unknown fields are
# kept (a newer version may add some), known ones must have their type.
RECORD_FIELDS: dict[str, tuple[tuple[type, ...], bool]] = {
    "schema": ((int,), True),
    "key": ((str,), True),
    "request": ((dict,), True),
    "attempt": ((int,), True),
    "status": ((str,), True),
    "final": ((bool,), True),
    "timestamp": ((str,), True),
    "usable": ((bool,), False),
    "text": ((str, _NONE), False),
    "refusal": ((str, _NONE), False),
    "finish_reason": ((str, _NONE), False),
    "served_model": ((str, _NONE), False),
    "response_id": ((str, _NONE), False),
    "usage": ((dict, _NONE), False),
    "cost_usd": ((*_NUM, _NONE), False),
    "latency_s": ((*_NUM, _NONE), False),
    "error": ((dict, _NONE), False),
}
REQUEST_FIELDS: dict[str, tuple[tuple[type, ...], bool]] = {
    "model": ((str,), True),
    "messages": ((list,), True),
    "params": ((dict,), True),
    "sample": ((int,), True),
    "prompt_id": ((str,), True),
    "prompt_version": ((str,), True),
    "model_id": ((str,), False),
    "api": ((str,), False),
    "prompt_template": ((str, _NONE), False),
    "stop": ((list,), False),
}
PARAMS_FIELDS: dict[str, tuple[tuple[type, ...], bool]] = {
    "temperature": (_NUM, True),
    "top_p": (_NUM, True),
    "max_tokens": ((int,), True),
    "seed": ((int, _NONE), True),
}
MESSAGE_FIELDS: dict[str, tuple[tuple[type, ...], bool]] = {"role": ((str,), True), "content": ((str,), True)}
USAGE_FIELDS: dict[str, tuple[tuple[type, ...], bool]] = {
    "prompt_tokens": ((int, _NONE), False),
    "completion_tokens": ((int, _NONE), False),
}
ERROR_FIELDS: dict[str, tuple[tuple[type, ...], bool]] = {
    "type": ((str,), True),
    "message": ((str, _NONE), False),
    "status_code": ((int, _NONE), False),
    "raw_body": ((str, _NONE), False),
}
_HEX_KEY = re.compile(r"[0-9a-f]{32}")
_KEY_IN_LINE = re.compile(rb'"key"\s*:\s*"([0-9a-f]{32})"')

_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(obj: Any) -> str:
    """Deterministic JSON: sorted keys, no spaces, UTF-8 kept."""
    return _CANONICAL.encode(obj)


def request_key(canonical_request: dict[str, Any]) -> str:
    """Hash of the canonical request (128 bits, hex)."""
    return hashlib.sha256(canonical_json(canonical_request).encode("utf-8")).hexdigest()[:32]


@dataclass
class LoadIssue:
    """A line (or a whole file, ``line`` None) the loader could not use."""

    file: Path
    line: int | None
    problem: str
    key: str | None = None  # the request the line was about (its key field), when that could still be read

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else f"{self.file}"
        return f"{where}: {self.problem}"

    @property
    def kind(self) -> str:
        """The problem without its details (what consecutive bad lines are grouped by)."""
        return self.problem.split(" (", 1)[0]


@dataclass
class StoreStats:
    records: int = 0  # attempt records (answers and errors; intents are counted in ``sent``)
    final: int = 0
    duplicate_finals: int = 0
    issues: list[LoadIssue] = field(default_factory=list)
    sent: int = 0  # write-ahead intents

    def summary(self, root: Path) -> str:
        """Every issue, one per line; a run of consecutive lines with the same problem on one line."""
        lines = [
            f"response store {root}: {len(self.issues)} damaged line(s) or file(s) skipped, {self.records} records kept:"
        ]
        i = 0
        while i < len(self.issues):
            first = last = self.issues[i]
            j = i + 1
            while (
                j < len(self.issues)
                and last.line is not None
                and self.issues[j].file == first.file
                and self.issues[j].line == last.line + 1  # type: ignore[operator]
                and self.issues[j].kind == first.kind
            ):
                last = self.issues[j]
                j += 1
            if last is first:
                lines.append(f"  {first}")
            else:
                lines.append(f"  {first.file}:{first.line}-{last.line}: {first.kind} ({j - i} lines)")
            i = j
        return "\n".join(lines)


class StoreMiss(UserError, LookupError):
    """Replay mode met a request that the store has no final answer for."""


class StoreBusy(UserError, RuntimeError):
    """Another live run holds the store's run lock."""


class StoreUnwritable(UserError, OSError):
    """A shard's path is taken by something that is not a file (a folder named ``<model>.jsonl``)."""


def _stored_request_matches(line: bytes, key: str) -> bool:
    """Fast path of the key check for a line as ``append`` writes it (canonical JSON, sorted keys).

    Such a line holds the canonical JSON of its request verbatim, between ``"request":`` and the
    next top-level field (``response_id``, or ``schema``, which every record has), so it can be
    hashed without re-encoding. Only a match is trusted; anything else takes the full check.
    """
    start = line.find(b',"request":{')
    if start < 0:
        return False
    start += len(b',"request":')
    for follower in (b',"response_id":', b',"schema":'):
        end = line.find(follower, start)
        if end > 0 and hashlib.sha256(line[start:end]).hexdigest()[:32] == key:
            return True
    return False


def _type_name(types: tuple[type, ...]) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false", dict: "an object"}
    names |= {list: "a list", _NONE: "null"}
    if set(_NUM) <= set(types):
        types = tuple(t for t in types if t is not int)
    return " or ".join(names[t] for t in types)


Spec = dict[str, tuple[tuple[type, ...], bool]]
_ABSENT = object()
_MEMO_MAX = 4096  # type signatures remembered per spec (a store holds a few dozen)


class _Rows:
    """A spec compiled for checking: its rows, and the type signatures already found good.

    Whether ``_check`` passes depends only on the types of the spec's fields (absent counts as a type),
    so a signature that passed once passes again: checking it is one tuple built in C and a set lookup.
    """

    def __init__(self, spec: Spec):
        self.rows = tuple((name, frozenset(types), required, types) for name, (types, required) in spec.items())
        self.names = tuple(spec)
        self.absent = (_ABSENT,) * len(spec)
        self.good: set[tuple[type, ...]] = set()


def _type_ok(value: Any, types: tuple[type, ...]) -> bool:
    """The slow path of a type check: subclasses count (True is an int to Python, but not here)."""
    return bool in types if isinstance(value, bool) else isinstance(value, types)


def _check(obj: dict[str, Any], spec: _Rows, prefix: str = "") -> str | None:
    """None if every known field of ``obj`` has its type, else what is wrong with the first that does not."""
    signature = tuple(map(type, map(obj.get, spec.names, spec.absent)))
    if signature in spec.good:
        return None
    for name, exact, required, types in spec.rows:
        value = obj.get(name, _ABSENT)
        if value is _ABSENT:
            if required:
                return f"missing field '{prefix}{name}'"
            continue
        if type(value) not in exact and not _type_ok(value, types):
            return f"field '{prefix}{name}' must be {_type_name(types)}, got {type(value).__name__}"
    if len(spec.good) < _MEMO_MAX:
        spec.good.add(signature)
    return None


_RECORD_ROWS, _REQUEST_ROWS, _PARAMS_ROWS = _Rows(RECORD_FIELDS), _Rows(REQUEST_FIELDS), _Rows(PARAMS_FIELDS)
_MESSAGE_ROWS, _USAGE_ROWS, _ERROR_ROWS = _Rows(MESSAGE_FIELDS), _Rows(USAGE_FIELDS), _Rows(ERROR_FIELDS)


def validate_record(rec: Any, line: bytes | None = None) -> str | None:
    """None if the record is well formed, else what is wrong with it (``line``: its JSONL text, if read).

    Every field's type is checked once per *shape* (``_shape``: the keys and value types of the record
    and of every object in it that has a spec); a shape seen in a good record has good types again, so
    a record of a known shape only has its values checked (``_check_values``, in the same order).
    """
    if not isinstance(rec, dict):
        return f"expected a JSON object, got {type(rec).__name__}"
    shape = _shape(rec)
    if shape is not None and shape in _GOOD_SHAPES:
        problem = _check_values(rec) or _usage_problem(rec.get("usage"))
    else:
        problem = _check_types_and_values(rec)
        if problem is None and shape is not None and len(_GOOD_SHAPES) < _MEMO_MAX:
            _GOOD_SHAPES.add(shape)
    if problem:
        return problem
    if line is not None and _stored_request_matches(line, rec["key"]):
        return None
    if request_key(rec["request"]) != rec["key"]:
        return "field 'key' does not match the hash of 'request' (edited by hand?)"
    return None


_GOOD_SHAPES: set[tuple[Any, ...]] = set()  # shapes of records whose every field had its type (at most _MEMO_MAX)


def _shape(rec: dict[str, Any]) -> tuple[Any, ...] | None:
    """The keys and value types of the record, its request, params, messages, usage and error, in order.

    Whether every field has its type depends on nothing else. None when an object that must be one
    is not (the full check then says what is wrong).
    """
    try:
        request = rec["request"]
        params = request["params"]
        parts = [tuple(rec), tuple(map(type, rec.values())), tuple(request), tuple(map(type, request.values()))]
        parts += (tuple(params), tuple(map(type, params.values())))
        for message in request["messages"]:
            parts += (type(message), tuple(message), tuple(map(type, message.values())))
        for name in ("usage", "error"):
            inner = rec.get(name)
            if isinstance(inner, dict):  # as the full check decides whether to look inside
                parts += (name, tuple(inner), tuple(map(type, inner.values())))
    except (KeyError, TypeError, AttributeError):
        return None
    return tuple(parts)


def _check_values(rec: dict[str, Any]) -> str | None:
    """What is wrong with the top-level values of a record whose fields have their types."""
    if rec["schema"] != SCHEMA:
        return f"field 'schema' is {rec['schema']}, this version reads schema {SCHEMA}"
    if not _HEX_KEY.fullmatch(rec["key"]):
        return "field 'key' must be 32 lower-case hex digits"
    if rec["attempt"] < 1:
        return "field 'attempt' must be >= 1"
    status = rec["status"]
    if status not in STATUSES:
        return f"field 'status' must be ok, error or sent, got {status!r}"
    if status == "error" and not isinstance(rec.get("error"), dict):
        return "a record with status error needs an 'error' object"
    if status == "sent" and rec["final"]:
        return "a record with status sent (a call's intent) cannot be final"
    return None


def _usage_problem(usage: Any) -> str | None:
    if isinstance(usage, dict):
        for name in USAGE_FIELDS:
            if (usage.get(name) or 0) < 0:
                return "field 'usage' holds a negative token count"
    return None


def _check_types_and_values(rec: dict[str, Any]) -> str | None:
    """The full check but the key's hash: every field's type and the values, the first problem found."""
    problem = _check(rec, _RECORD_ROWS) or _check_values(rec)
    if problem:
        return problem
    request = rec["request"]
    problem = _check(request, _REQUEST_ROWS, "request.") or _check(request["params"], _PARAMS_ROWS, "request.params.")
    for i, message in enumerate(request["messages"] if not problem else []):
        if not isinstance(message, dict):
            return f"field 'request.messages[{i}]' must be an object, got {type(message).__name__}"
        problem = _check(message, _MESSAGE_ROWS, f"request.messages[{i}].")
        if problem:
            break
    usage = rec.get("usage")
    if not problem and isinstance(usage, dict):
        problem = _check(usage, _USAGE_ROWS, "usage.") or _usage_problem(usage)
    if not problem and isinstance(rec.get("error"), dict):
        problem = _check(rec["error"], _ERROR_ROWS, "error.")
    return problem


def _decode_line(raw: bytes) -> tuple[Any, str | None]:
    """(the parsed JSON value, None) or (None, what is wrong with the bytes).

    orjson parses every line it accepts (strict JSON in UTF-8, as the store writes it) about three
    times faster than ``json``; a line it refuses is parsed again by ``json``, which accepts a little
    more (NaN, very large integers, escaped lone surrogates) and names what is wrong.
    """
    try:
        return orjson.loads(raw), None
    except orjson.JSONDecodeError:
        pass
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 text (invalid byte 0x{raw[exc.start]:02x} at byte {exc.start + 1} of the line)"
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"not JSON ({exc.msg}; column {exc.colno})"
    except RecursionError:
        return None, "not JSON (nested too deeply)"


def _line_keys(rec: Any, raw: bytes) -> list[str]:
    """The requests a damaged line was about, as far as they can still be read.

    Its key field (or, in a line that is not JSON, the first ``"key": "<32 hex>"``), and the hash of
    its request when that is an object: a mis-keyed line (edited key or edited request) is filed
    under both, so neither request is taken for one that was never asked.
    """
    keys: list[str] = []
    if isinstance(rec, dict):
        key = rec.get("key")
        if isinstance(key, str) and _HEX_KEY.fullmatch(key):
            keys.append(key)
        request = rec.get("request")
        if isinstance(request, dict):
            try:
                hashed = request_key(request)
            except (TypeError, ValueError, RecursionError):  # not encodable again (a lone surrogate, depth)
                hashed = None
            if hashed and hashed not in keys:
                keys.append(hashed)
        return keys
    match = _KEY_IN_LINE.search(raw)
    return [match.group(1).decode("ascii")] if match else []


def maybe_paid(rec: dict[str, Any]) -> bool:
    """Whether an attempt record may have been charged: an answer, or an error after the server took the call."""
    if rec["status"] == "ok":
        return True
    if rec["status"] != "error":
        return False
    return rec["error"]["type"] in MAYBE_PAID_ERRORS or bool(rec.get("usage"))


def _read_locked(path: Path) -> bytes:
    """A shard's bytes, read under a shared lock so a writer's line is never seen half written."""
    with open(path, "rb") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_SH)  # released when the file is closed
        return fh.read()


class ResponseStore:
    """Append-only JSONL store of LLM call attempts, sharded by model.

    ``announce``: print the load issues (new ones only, on every load) to stderr, which a notebook shows.
    """

    def __init__(self, root: str | Path, announce: bool = True):
        self.root = Path(root)
        self.announce = announce
        self._lock = threading.Lock()
        self._final: dict[str, dict[str, Any]] = {}
        self._records: list[dict[str, Any]] = []
        self._damaged: dict[str, list[LoadIssue]] = {}
        self._open: dict[str, set[int]] = {}  # key -> attempts whose intent has no outcome record (yet)
        self._last_attempt: dict[str, int] = {}
        self._paid: set[str] = set()  # keys with an attempt that may have been charged
        self._announced: set[str] = set()
        self.stats = StoreStats()
        self.reload()

    # reading -------------------------------------------------------------------------
    def reload(self) -> StoreStats:
        """(Re)read every shard, validating each line; bad lines are reported, not fatal."""
        self._final, self._records, self._damaged = {}, [], {}
        self._open, self._last_attempt, self._paid = {}, {}, set()
        self._shards: list[Path] = []
        stats = StoreStats()
        if self.root.exists() and not self.root.is_dir():
            stats.issues.append(LoadIssue(self.root, None, "is not a folder; nothing loaded"))
        entries = sorted(self.root.iterdir()) if self.root.is_dir() else []
        for path in entries:
            if path.name.startswith("."):
                continue
            if path.suffix != SHARD_SUFFIX or path.is_dir():
                what = "a directory" if path.is_dir() else "a file"
                problem = f"{what} that is not a store shard (only *{SHARD_SUFFIX} files are read); ignored"
                stats.issues.append(LoadIssue(path, None, problem))
                continue
            try:
                data = _read_locked(path)
            except OSError as exc:
                stats.issues.append(LoadIssue(path, None, f"cannot be read ({exc.strerror}); ignored"))
                continue
            self._shards.append(path)
            self._load_lines(path, data, stats)
        self.stats = stats
        if self.announce:
            self._announce()
        return stats

    def _load_lines(self, path: Path, data: bytes, stats: StoreStats) -> None:
        # Every record kept is a few new dicts: with the cyclic garbage collector on, the collections
        # their allocations start walk the records kept so far again and again (a third of the load's
        # time at 50,000 records). Records hold no reference cycles (refcounting frees them), so the
        # collector is off while a shard is read, and as it was after.
        collecting = gc.isenabled()
        gc.disable()
        try:
            self._parse_lines(path, data, stats)
        finally:
            if collecting:
                gc.enable()

    def _parse_lines(self, path: Path, data: bytes, stats: StoreStats) -> None:
        lines = data.split(b"\n")
        torn_tail = not data.endswith(b"\n")  # the last piece has no newline: a writer stopped mid-line
        for number, raw in enumerate(lines, start=1):
            if not raw or raw.isspace():
                continue
            rec, problem = _decode_line(raw)
            if problem is None:
                problem = validate_record(rec, raw)
            if problem:
                if torn_tail and number == len(lines) and raw.lstrip().startswith(b"{"):  # the start of a record
                    problem = "torn last line (a writer was killed mid-write)"
                keys = _line_keys(rec, raw)
                issue = LoadIssue(path, number, problem, keys[0] if keys else None)
                stats.issues.append(issue)
                for key in keys:
                    self._damaged.setdefault(key, []).append(issue)
                continue
            self._add(rec, stats)

    def _add(self, rec: dict[str, Any], stats: StoreStats) -> None:
        """Take a valid record into the in-memory state (from a shard, or just appended)."""
        key, attempt = rec["key"], rec["attempt"]
        if attempt > self._last_attempt.get(key, 0):
            self._last_attempt[key] = attempt
        if rec["status"] == "sent":
            stats.sent += 1
            self._open.setdefault(key, set()).add(attempt)
            return
        waiting = self._open.get(key)
        if waiting:
            waiting.discard(attempt)
        stats.records += 1
        self._records.append(rec)
        if maybe_paid(rec):
            self._paid.add(key)
        if rec["final"]:
            outcome = self._keep_final(rec)
            stats.duplicate_finals += outcome == "duplicate"
            stats.final += outcome == "new"

    def _announce(self) -> None:
        new = [i for i in self.stats.issues if str(i) not in self._announced]
        if new:
            self._announced.update(str(i) for i in new)
            shown = StoreStats(self.stats.records, issues=new)
            print(shown.summary(self.root), file=sys.stderr, flush=True)

    def shards(self) -> list[Path]:
        """The shard files the last load read (a folder named ``*.jsonl`` or an unreadable file is not one)."""
        return list(self._shards)

    def get(self, key: str) -> dict[str, Any] | None:
        """The final record of a request (its first success, else its first failure), or None."""
        return self._final.get(key)

    def damaged(self, key: str) -> list[LoadIssue]:
        """The damaged lines that were about this request (the loader skipped them)."""
        return list(self._damaged.get(key, []))

    def lost(self, key: str) -> list[int]:
        """Attempts of this request that were sent (an intent is stored) but have no outcome record: calls in
        flight when their run was killed, maybe paid, whose answer is lost."""
        return sorted(self._open.get(key, ()))

    def last_attempt(self, key: str) -> int:
        """The highest attempt number stored for this request (0 if none): a new attempt takes the next."""
        return self._last_attempt.get(key, 0)

    def maybe_paid(self, key: str) -> bool:
        """Whether any stored attempt of this request may have been charged (``maybe_paid``), lost calls included."""
        return key in self._paid or bool(self._open.get(key))

    def __contains__(self, key: str) -> bool:
        return key in self._final

    def __len__(self) -> int:
        return len(self._final)

    def records(self) -> list[dict[str, Any]]:
        """Every valid attempt record, in file order (finals and failed attempts; intents left out)."""
        return list(self._records)

    def final_records(self) -> list[dict[str, Any]]:
        return list(self._final.values())

    # writing -------------------------------------------------------------------------
    def append(self, record: dict[str, Any]) -> None:
        """Append one record atomically; final records become visible to get(), intents to lost().

        A record that is malformed or cannot be written as UTF-8 (a lone surrogate) is refused
        with ValueError before anything is written.
        """
        record = {"schema": SCHEMA, **record}
        problem = validate_record(record)
        if problem:
            raise ValueError(f"refusing to store a malformed record: {problem}")
        try:
            line = (canonical_json(record) + "\n").encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(f"refusing to store a record that is not valid Unicode text: {exc.reason}") from None
        path = self.root / f"{_safe_name(record['request']['model'])}{SHARD_SUFFIX}"
        with self._lock:
            try:
                fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            except FileNotFoundError:
                self.root.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            except IsADirectoryError:
                raise StoreUnwritable(
                    f"{path} is a folder, not a store shard: move it away (model "
                    f"{record['request']['model']!r} writes its records there)"
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    line = b"\n" + line  # start on a fresh line if an earlier writer was killed mid-line
                view = memoryview(line)
                while view:  # one write() in practice; the lock keeps a rare partial write contiguous
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            self._add(record, self.stats)

    def _keep_final(self, rec: dict[str, Any]) -> str:
        """Make ``rec`` the answer to its request if it is the first, or the first success after a failure.

        A request whose final record is an error (retries used up, a bad key) can be asked again
        in a later live run; its first successful final record then becomes the answer. Returns
        "new", "replaced" or "duplicate" (a second final record after a success is ignored).
        """
        current = self._final.get(rec["key"])
        if current is None:
            self._final[rec["key"]] = rec
            return "new"
        if current["status"] == "error" and rec["status"] == "ok":
            self._final[rec["key"]] = rec
            return "replaced"
        return "duplicate"

    # one live run at a time ------------------------------------------------------------
    @contextmanager
    def run_lock(self) -> Iterator[None]:
        """Hold the store's exclusive run lock, or raise StoreBusy naming the run that holds it.

        The lock is an ``flock`` on ``<store>/.run.lock``, released when the holder exits, also
        when it is killed; the file says who holds it (pid, host, start time, command).
        """
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 1000, 0).decode("utf-8", "replace").strip() or "holder unknown"
                raise StoreBusy(
                    f"the response store {self.root} is in use by another live run ({holder}); "
                    "let it finish or stop it, then run again"
                ) from None
            started = datetime.now(UTC).isoformat(timespec="seconds")
            command = " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))[:200]
            info = f"pid {os.getpid()} on {socket.gethostname()}, started {started}: {command}"
            os.ftruncate(fd, 0)
            os.pwrite(fd, info.encode("utf-8", "replace"), 0)
            yield
        finally:
            os.close(fd)

    # summaries -----------------------------------------------------------------------
    def usage_by_model(self) -> dict[str, Counter]:
        """Calls and tokens per model over every attempt (failed attempts can be paid too)."""
        out: dict[str, Counter] = {}
        for rec in self._records:  # answers and errors (an intent's call is counted by its outcome)
            c = out.setdefault(rec["request"]["model"], Counter())
            c["attempts"] += 1
            c["final"] += int(rec["final"])
            c["errors"] += int(rec["status"] == "error")
            usage = rec.get("usage") or {}
            c["prompt_tokens"] += int(usage.get("prompt_tokens") or 0)
            c["completion_tokens"] += int(usage.get("completion_tokens") or 0)
        return out


def _safe_name(model: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-._" else "_" for ch in model)
