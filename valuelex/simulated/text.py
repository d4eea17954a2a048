"""Text of simulated answers: tokens, truncation, spelling, misspellings, lists with the spans of their items.

An answer is built as a list of pieces, some of them planted items (a value word or a word that is
not a value); ``Pieces.text()`` joins them and knows where each item sits, so that after a cut at
the token limit or at a stop sequence the truth says which items survived whole.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

#: A token: optional leading white space and up to seven letters, one digit or one other character;
#: or white space alone. Every character of a text is in exactly one token, so tokens join back to it.
_TOKEN = re.compile(r"\s*(?:[A-Za-z]{1,7}|\d|[^\sA-Za-z\d])|\s+")


def tokens(text: str) -> list[str]:
    """The simulator's tokens (about four characters each, as an LLM tokenizer's); they join back to ``text``."""
    return _TOKEN.findall(text)


def count_tokens(text: str) -> int:
    return len(tokens(text))


def truncate(text: str, max_tokens: int | None) -> tuple[str, bool]:
    """The text cut after ``max_tokens`` tokens (possibly inside a word, as a real cut-off is), and whether it was cut."""
    if max_tokens is None:
        return text, False
    toks = tokens(text)
    if len(toks) <= max_tokens:
        return text, False
    return "".join(toks[:max_tokens]), True


def apply_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """The text before the first stop sequence (the sequence itself is not returned), and whether one was found."""
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def british(word: str, rules: Sequence[tuple[str, str]]) -> str:
    """The British spelling of an American form (each rule replaces a part of a word, in order)."""
    for american, brit in rules:
        if american in word:
            return word.replace(american, brit)
    return word


_VOWELS = "aeiou"


def misspell(word: str, rng: np.random.Generator) -> str:
    """A plausible misspelling: two inner letters swapped, one dropped or doubled, or a vowel changed.

    Words shorter than five letters and multi-word terms' short parts are left alone (they rarely get typos).
    """
    parts = word.split(" ")
    longest = max(range(len(parts)), key=lambda i: len(parts[i]))
    w = parts[longest]
    letters = [i for i in range(1, len(w) - 1) if w[i].isalpha()]
    if len(w) < 5 or len(letters) < 3:
        return word
    kind = int(rng.integers(4))
    i = letters[int(rng.integers(len(letters) - 1))]
    if kind == 0 and w[i] != w[i + 1]:
        w = w[:i] + w[i + 1] + w[i] + w[i + 2 :]
    elif kind == 1:
        w = w[:i] + w[i + 1 :]
    elif kind == 2:
        w = w[:i] + w[i] + w[i:]
    else:
        vowels = [j for j in letters if w[j] in _VOWELS]
        if not vowels:
            w = w[:i] + w[i + 1 :]
        else:
            j = vowels[int(rng.integers(len(vowels)))]
            other = [v for v in _VOWELS if v != w[j]]
            w = w[:j] + other[int(rng.integers(len(other)))] + w[j + 1 :]
    parts[longest] = w
    return " ".join(parts)


def capitalise(word: str) -> str:
    return word[:1].upper() + word[1:]


@dataclass
class Pieces:
    """An answer under construction: text pieces, some of them planted items (by index into ``items``)."""

    parts: list[tuple[str, int | None]] = field(default_factory=list)

    def add(self, text: str, item: int | None = None) -> Pieces:
        self.parts.append((text, item))
        return self

    def text(self) -> str:
        return "".join(t for t, _ in self.parts)

    def spans(self) -> dict[int, list[tuple[int, int]]]:
        """Each item's (start, end) character spans in ``text()`` (an item said twice has two)."""
        out: dict[int, list[tuple[int, int]]] = {}
        at = 0
        for text, item in self.parts:
            if item is not None:
                out.setdefault(item, []).append((at, at + len(text)))
            at += len(text)
        return out


def join_list(pieces: Pieces, surfaces: Sequence[str], indices: Sequence[int], final: str, oxford: bool) -> Pieces:
    """``a, b and c`` (``final`` is "and" or ","): the items as one list inside a sentence."""
    n = len(surfaces)
    for k, (surface, index) in enumerate(zip(surfaces, indices, strict=True)):
        if k:
            if k == n - 1 and final == "and":
                pieces.add(", and " if oxford and n > 2 else " and ")
            else:
                pieces.add(", ")
        pieces.add(surface, index)
    return pieces
