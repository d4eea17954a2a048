"""The response store: append-only JSONL, one record per LLM call attempt. It is the dataset.

Layout: ``data/raw/<study>/<model>.jsonl``. Each line is one attempt with the canonical
request, the raw text, finish reason, usage, latency, time, and error or refusal.
Records are keyed by a hash of the canonical request (which includes the sample index, so
sampled answers replay too). An attempt that concludes a request (a usable answer, or the
last try after bounded retries and re-asks) has ``final: true``; the answer to a request is
its first final record. Failed attempts stay in the file as the log of what went wrong.

Writes are single ``write()`` calls of a whole line on an ``O_APPEND`` descriptor under an
exclusive ``flock``, so concurrent writers (threads or processes) never interleave, and a
process killed at any moment leaves at worst one torn last line, which the loader reports
(file and line) and skips; the next writer starts on a fresh line.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = 1
REQUIRED = {
    "schema": int,
    "key": str,
    "request": dict,
    "attempt": int,
    "status": str,
    "final": bool,
    "timestamp": str,
}
REQUEST_REQUIRED = ("model", "messages", "params", "sample", "prompt_id", "prompt_version")


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(obj: Any) -> str:
    """Deterministic JSON: sorted keys, no spaces, UTF-8 kept."""
    return _CANONICAL.encode(obj)


def request_key(canonical_request: dict[str, Any]) -> str:
    """Hash of the canonical request (128 bits, hex)."""
    return hashlib.sha256(canonical_json(canonical_request).encode("utf-8")).hexdigest()[:32]


@dataclass
class LoadIssue:
    """A line the loader could not use."""

    file: Path
    line: int
    problem: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.problem}"


@dataclass
class StoreStats:
    records: int = 0
    final: int = 0
    duplicate_finals: int = 0
    issues: list[LoadIssue] = field(default_factory=list)


class StoreMiss(LookupError):
    """Replay mode met a request that the store has no final answer for."""


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


def validate_record(rec: Any, line: bytes | None = None) -> str | None:
    """None if the record is well formed, else what is wrong with it (``line``: its JSONL text, if read)."""
    if not isinstance(rec, dict):
        return f"expected a JSON object, got {type(rec).__name__}"
    for name, typ in REQUIRED.items():
        if name not in rec:
            return f"missing field {name!r}"
        if not isinstance(rec[name], typ):
            return f"field {name!r} must be {typ.__name__}"
    for name in REQUEST_REQUIRED:
        if name not in rec["request"]:
            return f"missing field 'request.{name}'"
    if rec["status"] not in ("ok", "error"):
        return f"field 'status' must be ok or error, got {rec['status']!r}"
    if line is not None and _stored_request_matches(line, rec["key"]):
        return None
    if request_key(rec["request"]) != rec["key"]:
        return "field 'key' does not match the hash of 'request' (edited by hand?)"
    return None


class ResponseStore:
    """Append-only JSONL store of LLM call attempts, sharded by model."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._lock = threading.Lock()
        self._final: dict[str, dict[str, Any]] = {}
        self._records: list[dict[str, Any]] = []
        self.stats = StoreStats()
        self.reload()

    # reading -------------------------------------------------------------------------
    def reload(self) -> StoreStats:
        """(Re)read every shard, validating each line; bad lines are reported, not fatal."""
        self._final.clear()
        self._records.clear()
        stats = StoreStats()
        for path in sorted(self.root.glob("*.jsonl")) if self.root.exists() else []:
            with open(path, "rb") as fh:
                data = fh.read()
            lines = data.split(b"\n")
            torn_tail = not data.endswith(b"\n") and data != b""
            for number, raw in enumerate(lines, start=1):
                if not raw.strip():
                    continue
                try:
                    rec = json.loads(raw)
                except json.JSONDecodeError as exc:
                    torn = torn_tail and number == len(lines)
                    problem = "torn last line (a writer was killed mid-write)" if torn else f"not JSON ({exc.msg})"
                    stats.issues.append(LoadIssue(path, number, problem))
                    continue
                problem = validate_record(rec, raw)
                if problem:
                    stats.issues.append(LoadIssue(path, number, problem))
                    continue
                stats.records += 1
                self._records.append(rec)
                if rec["final"]:
                    outcome = self._keep_final(rec)
                    stats.duplicate_finals += outcome == "duplicate"
                    stats.final += outcome == "new"
        self.stats = stats
        return stats

    def get(self, key: str) -> dict[str, Any] | None:
        """The final record of a request (its first success, else its first failure), or None."""
        return self._final.get(key)

    def __contains__(self, key: str) -> bool:
        return key in self._final

    def __len__(self) -> int:
        return len(self._final)

    def records(self) -> list[dict[str, Any]]:
        """Every valid attempt record, in file order (finals and failed attempts)."""
        return list(self._records)

    def final_records(self) -> list[dict[str, Any]]:
        return list(self._final.values())

    # writing -------------------------------------------------------------------------
    def append(self, record: dict[str, Any]) -> None:
        """Append one attempt record atomically; final records become visible to get()."""
        record = {"schema": SCHEMA, **record}
        problem = validate_record(record)
        if problem:
            raise ValueError(f"refusing to store a malformed record: {problem}")
        line = (canonical_json(record) + "\n").encode("utf-8")
        path = self.root / f"{_safe_name(record['request']['model'])}.jsonl"
        with self._lock:
            try:
                fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            except FileNotFoundError:
                self.root.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
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
            self._records.append(record)
            if record["final"]:
                self._keep_final(record)

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

    def extend(self, records: Iterable[dict[str, Any]]) -> None:
        for rec in records:
            self.append(rec)

    # summaries -----------------------------------------------------------------------
    def usage_by_model(self) -> dict[str, Counter]:
        """Calls and tokens per model over every attempt (failed attempts can be paid too)."""
        out: dict[str, Counter] = {}
        for rec in self._records:
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
