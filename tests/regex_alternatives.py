"""The alternatives of the regular expressions in valuelex/parse.py, and the parser with one of them dropped.

Used by tests/test_parse.py (every alternative is pinned by a case whose parse changes without it)
and by benchmarks/mutation_test.py (which writes the real-answer pins).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from valuelex import parse


def regex_alternatives(pattern: str) -> list[tuple[int, int]]:
    """Spans (start, end) of every alternative of every ``|`` alternation in a pattern, nested groups too.

    Character classes and escaped characters are skipped; a group's alternatives are the pieces
    between its ``|`` at its own depth.
    """
    spans: list[tuple[int, int]] = []
    stack: list[list[int]] = [[0]]  # per open group: where its body starts, then each of its "|"
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "[":
            j = i + 1
            if j < n and pattern[j] == "^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            i = j + 1
            continue
        if ch == "(":
            body = i + 1
            if pattern.startswith("?P<", body):
                body = pattern.index(">", body) + 1
            elif pattern.startswith(("?<=", "?<!"), body):
                body += 3
            elif pattern.startswith("?", body):  # (?:  (?=  (?!
                body += 2
            stack.append([body])
            i = body
            continue
        if ch == "|":
            stack[-1].append(i)
        elif ch == ")":
            spans += _group_spans(stack.pop(), i)
        i += 1
    spans += _group_spans(stack.pop(), n)
    return sorted(spans)


def _group_spans(marks: list[int], end: int) -> list[tuple[int, int]]:
    if len(marks) == 1:
        return []  # no alternation in this group
    starts = [marks[0]] + [m + 1 for m in marks[1:]]
    return list(zip(starts, marks[1:] + [end], strict=True))


def drop_alternative(pattern: str, span: tuple[int, int]) -> str:
    """The pattern without one alternative (and the ``|`` next to it)."""
    start, end = span
    if end < len(pattern) and pattern[end] == "|":
        return pattern[:start] + pattern[end + 1 :]
    return pattern[: start - 1] + pattern[end:]


def parse_patterns() -> dict[str, re.Pattern]:
    """The module-level regular expressions of valuelex.parse, by name."""
    return {name: value for name, value in vars(parse).items() if isinstance(value, re.Pattern)}


def alternatives() -> list[tuple[str, str, tuple[int, int]]]:
    """(regex name, alternative id, span) for every alternative; the id is its text, with ' #2' for a repeat."""
    out = []
    for name, pattern in sorted(parse_patterns().items()):
        seen: dict[str, int] = {}
        for span in regex_alternatives(pattern.pattern):
            text = pattern.pattern[span[0] : span[1]]
            seen[text] = seen.get(text, 0) + 1
            out.append((name, text if seen[text] == 1 else f"{text} #{seen[text]}", span))
    return out


@contextmanager
def without(name: str, span: tuple[int, int]) -> Iterator[None]:
    """valuelex.parse with one alternative of one regex dropped, for the duration of the block."""
    original = getattr(parse, name)
    setattr(parse, name, re.compile(drop_alternative(original.pattern, span), original.flags))
    try:
        yield
    finally:
        setattr(parse, name, original)


def outcome(text: str, truncated: bool = False) -> dict:
    """Everything parse_answer says about an answer."""
    result = parse.parse_answer(text, truncated=truncated)
    return {
        "status": result.status,
        "descriptors": list(result.descriptors),
        "items": result.items,
        "repeats": result.repeats,
        "refusal_phrase": result.refusal_phrase,
        "discarded": list(result.discarded),
    }
