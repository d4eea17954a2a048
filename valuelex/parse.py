"""Parse a raw LLM answer into value descriptors (short words or phrases), keeping count of what failed.

Answers come as comma lists, numbered or bulleted lists, markdown, "Honesty: being truthful..."
explanations, or prose ("My values are honesty and respect."). Small models also ramble,
repeat themselves and stop mid-word. The parser never raises: every answer gets a status.

Statuses: ``ok`` (at least one descriptor), ``empty`` (no text), ``unparseable`` (text but
no descriptor found), ``refusal`` (a refusal and nothing else), ``error`` (the call failed).
A refusal followed by values ("No ... However, Accuracy and Respect are important to me",
the paper's Figure 1 example) is ``ok`` with ``refusal_phrase=True``.

Refusals are recognised by sentence: a sentence that apologises ("I'm sorry, but ...") or denies
having values, beliefs, opinions or feelings ("I do not have personal values") gives no descriptor,
and neither do its clauses around "but"/"however" that do; its other clauses are read as usual
("I don't have personal beliefs, but I am designed around honesty and care" gives both values).
Being an AI is not a refusal: "as an AI", "as a language model" is removed from a sentence
("The words that define my values as a language model are empathy and care").
A descriptor that starts with a pronoun or relative word ("which I believe", "These", "as it") is what is
left of a clause whose verb was cut, and names no value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pandas as pd

MAX_WORDS = 3  # an item longer than this is prose; we look for a value phrase at its end

# A clause that apologises or denies having values: it names no value, whatever words it lists.
_REFUSAL = re.compile(
    r"\bi (?:(?:do not|don't|don’t|cannot|can't|can’t|have no)(?: have| possess)?(?: any)?(?: personal)?"
    r" (?:values|beliefs|opinions|feelings|preferences)|am not capable of having)\b",
    re.I,
)
# A sentence that opens with an apology is a refusal, whatever follows ("I'm sorry, but I can't say");
# not "... because I am sorry for what happened".
_APOLOGY = re.compile(r"^[\W\d]*i(?:'m|’m| am) sorry\b|^[\W\d]*i apologi[sz]e\b", re.I)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|[\n\r]+")
# Where a sentence turns from a refusal to what the model does hold ("..., but I value honesty").
_CONTRAST = re.compile(r"[,;]?\s*\b(?:but|however|although|yet)\b", re.I)
# What the model is, said on the way ("As an AI, I value honesty"): not a refusal, and no value.
_AS_AN_AI = re.compile(r"\bas an? (?:(?:ai |large )?language model|ai)\b,?", re.I)
_MARKDOWN = re.compile(r"(__|\*|`|#+\s)")
_HTML_TAG = re.compile(r"</?[a-zA-Z][^<>]*>|</?[a-zA-Z]*$")  # whole tags, and a tag cut off at the end
_LIST_MARKER = re.compile(r"^\s*(?:[-*•·‣◦]+|\(?\d{1,3}[.)]|\(?[a-zA-Z][.)](?=\s))\s*")
_EXPLANATION = re.compile(r"\s*(?::|\s[-–—]\s|\()")
_SPLIT = re.compile(r"\s*(?:[,;/|]|\band\b|\bor\b|&|\bas well as\b|\bnor\b)\s*", re.I)
# Words that end a lead-in to a value inside prose: "my values are X", "I believe in X".
_LEAD_IN = re.compile(
    r"^.*\b(?:are|is|be|being|include|includes|including|like|such as|in|of|on|around|about|"
    r"value|values|prioritize|prioritise|embody|embodies|emphasize|emphasise|represent|represents|"
    r"describe|describes|me|am|a|an|the|my|our|with)\s+",
    re.I,
)
_DISCOURSE = re.compile(
    r"^(?:however|but|no|yes|also|additionally|finally|overall|furthermore|moreover|lastly|firstly|secondly|"
    r"thirdly|then|so|i'm|i’m|im|i|being|be|am|a|an|the|my|our|to|very|more|most|always|believe in|"
    r"value|values|strive for|care about|focus on|prioritize|prioritise|embrace|promote|promotes|uphold|include|"
    r"including|importance of|principle of|principles of|sense of|supports|cultivating|developing|"
    r"fostering|having|[a-z]{3,}ed (?:around|on|upon|by|to|in))\b[\s,]*",
    re.I,
)
# "X, Y and Z are the values most important to me", "Honesty is my top priority", "Respect matters":
# the value is the subject, the rest says it is one.
_IMPORTANT_TO_ME = re.compile(
    r"\s+(?:(?:are|is|remain|remains)\s+(?:(?:the|my|our|most)\s+)*(?:(?!not\b|no\b)[a-z]+\s+)?"
    r"(?:important|essential|key|central|crucial|fundamental|vital|core|valuable|paramount|what|values?|"
    r"principles?|priority|priorities)|(?<!what )matters?)\b.*$",
    re.I,
)
# A scope said after the last value ("... and care in everything I do", "honesty at all times").
_SCOPE = re.compile(
    r"\s+(?:in|at|above|across|for|to|towards|with)\s+(?:all|every|everything|everyone|each|any)\b.*$", re.I
)
_INDEFINITE = re.compile(r"\ban?\s+$", re.I)
# A descriptor that starts with one of these is the subject or object of a sentence, not a value: a
# pronoun or relative word left when the rest of a clause is cut ("Love, which I believe is a fundamental
# aspect ..." -> "which I believe"; "These are the values I cherish" -> "These"; "as it is ..." -> "as it").
_NO_VALUE_FIRST = frozenset(
    "which who whom whose that this these those it they what as there their his her your its".split()
)
_LABEL = re.compile(r"\b(values?|words?|principles?|here|are|include|list|answer|priorities)\b", re.I)
_REPEATED_WORD = re.compile(r"\b(\w+)(?:\s+\1\b)+", re.I)
_TRAILING_JUNK = re.compile(r"[\s.!?:;,'\"“”‘’)(\[\]]+$")
_LEADING_JUNK = re.compile(r"^[\s'\"“”‘’(\[\].:;,-]+")
_ALPHA = re.compile(r"[A-Za-z]")


@dataclass
class ParseResult:
    """The descriptors found in one answer and what happened on the way."""

    descriptors: list[str]
    status: str
    items: int = 0
    discarded: list[str] = field(default_factory=list)
    repeats: int = 0
    refusal_phrase: bool = False


def _items(text: str) -> list[str]:
    """Split an answer into candidate items: lines, list entries, comma/and-separated parts."""
    text = _HTML_TAG.sub("", _MARKDOWN.sub("", text))
    items: list[str] = []
    for line in re.split(r"[\n\r]+", text):
        line = _LIST_MARKER.sub("", line).strip()
        if not line:
            continue
        # "Honesty: being truthful" / "Honesty - being truthful" / "Honesty (truthfulness)" -> "Honesty"
        # but "My values: honesty, respect" is a label followed by a list.
        parts = _EXPLANATION.split(line, maxsplit=1)
        head = parts[0]
        if len(parts) == 2 and _LABEL.search(head) and line[len(head) :].lstrip().startswith(":"):
            line = parts[1]
        elif head and len(head.split()) <= MAX_WORDS and _ALPHA.search(head) and head != line:
            items.append(head)
            continue
        for sentence in _SENTENCE.split(line):
            for clause in _clauses(sentence):
                items.extend(p for p in _SPLIT.split(_AS_AN_AI.sub(" ", clause)) if p and p.strip())
    return items


def _clauses(sentence: str) -> list[str]:
    """The clauses of a sentence that are no refusal: none after an apology, all but those that deny
    having values, or all of it."""
    if _APOLOGY.search(sentence):
        return []
    if not _REFUSAL.search(sentence):
        return [sentence]
    return [c for c in _CONTRAST.split(sentence) if not _REFUSAL.search(c)]


def _clean(item: str) -> str:
    item = _LEADING_JUNK.sub("", item)
    item = _TRAILING_JUNK.sub("", item)
    return re.sub(r"\s+", " ", item).strip()


def _strip_discourse(item: str) -> str:
    """Remove leading discourse and lead-in words ("However", "I believe in", "the") until none is left."""
    previous = None
    while item and item != previous:
        previous = item
        item = _clean(_DISCOURSE.sub("", item))
    return item


def _descriptor(item: str) -> str | None:
    """A short value phrase from one item, or None."""
    item = _clean(item)
    if not item or not _ALPHA.search(item) or _REFUSAL.search(item):
        return None
    item = _REPEATED_WORD.sub(r"\1", item)
    item = _clean(_SCOPE.sub("", _clean(_IMPORTANT_TO_ME.sub("", item))))
    item = _strip_discourse(item)
    if not item:
        return None
    if len(item.split()) > MAX_WORDS:
        lead_in = _LEAD_IN.match(item)
        tail = _clean(item[lead_in.end() :]) if lead_in else item
        if tail == item or not tail or len(tail.split()) > MAX_WORDS:
            return None
        # "That is a thoughtful question": a phrase after an indefinite article classifies, it names no
        # value; one word after it is the first of a list ("I stand for a strong, caring community")
        if _INDEFINITE.search(lead_in.group(0)) and len(tail.split()) > 1:
            return None
        item = _strip_discourse(tail)
    if len(item) > 40 or not _ALPHA.search(item) or item.split()[0].lower() in _NO_VALUE_FIRST:
        return None
    return item


def parse_answer(text: object, truncated: bool = False) -> ParseResult:
    """Descriptors in order of first appearance (case-insensitive duplicates removed).

    ``truncated``: the answer hit the token limit (finish reason ``length``), so its last item
    may be a cut-off word ("Trans" for "Transparency") and is dropped.
    """
    if not isinstance(text, str) or not text.strip():  # None, or NaN from a table: no answer text
        return ParseResult([], "empty")
    refusal = any(_APOLOGY.search(s) or _REFUSAL.search(s) for s in _SENTENCE.split(text))
    items = _items(text)
    if truncated and items:
        # the cut happened inside the last item only if the text ends with it
        tail = _clean(_HTML_TAG.sub("", _MARKDOWN.sub("", text)))
        if tail.lower().endswith(_clean(items[-1]).lower()):
            items = items[:-1]
    seen: set[str] = set()
    found: list[str] = []
    discarded: list[str] = []
    repeats = 0
    for raw in items:
        d = _descriptor(raw)
        if d is None:
            if raw.strip():
                discarded.append(raw.strip()[:80])
            continue
        k = d.lower()
        if k in seen:
            repeats += 1
            continue
        seen.add(k)
        found.append(d)
    if found:
        status = "ok"
    elif refusal:
        status = "refusal"
    else:
        status = "unparseable"
    return ParseResult(found, status, len(items), discarded, repeats, refusal)


def parse_responses(responses: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Parse every stored answer. Returns (responses with parse columns, long descriptor table)."""
    statuses, counts, refusals, repeats = [], [], [], []
    rows = []
    for rec in responses.itertuples(index=False):
        if rec.status != "ok":
            result_status, descriptors, refusal, rep = "error", [], False, 0
        else:
            parsed = parse_answer(rec.text, truncated=getattr(rec, "finish_reason", None) == "length")
            result_status, descriptors, refusal, rep = (
                parsed.status,
                parsed.descriptors,
                parsed.refusal_phrase,
                parsed.repeats,
            )
        statuses.append(result_status)
        counts.append(len(descriptors))
        refusals.append(refusal)
        repeats.append(rep)
        for position, raw in enumerate(descriptors):
            rows.append(
                {
                    "respondent": rec.respondent,
                    "model": rec.model,
                    "training_stage": rec.training_stage,
                    "prompt_id": rec.prompt_id,
                    "sample": rec.sample,
                    "position": position,
                    "raw": raw,
                }
            )
    out = responses.copy()
    out["parse_status"] = statuses
    out["n_descriptors"] = counts
    out["refusal_phrase"] = refusals
    out["repeated_items"] = repeats
    return out, pd.DataFrame(
        rows, columns=["respondent", "model", "training_stage", "prompt_id", "sample", "position", "raw"]
    )
