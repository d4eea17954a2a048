"""What is asked: one request (a model, its messages, its decoding), its canonical form and key, and a panel's requests."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .cards import ModelCard, Panel, Respondent
from .limits import MESSAGE_OVERHEAD_TOKENS, estimate_tokens
from .store import request_key


@dataclass(frozen=True)
class Request:
    """One call: a model, a conversation, decoding settings, and which sample it is."""

    model: str
    messages: tuple[tuple[str, str], ...]  # (role, content) pairs
    temperature: float
    top_p: float
    max_tokens: int
    seed: int | None = None
    sample: int = 0
    prompt_id: str = ""
    prompt_version: str = ""
    # Extra request parameters sent as they are, e.g. (("logprobs", True), ("top_logprobs", 20));
    # part of the key only when given, so requests without them keep their keys.
    extra: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def for_respondent(
        cls,
        respondent: Respondent,
        messages: Sequence[tuple[str, str]],
        *,
        max_tokens: int,
        sample: int = 0,
        prompt_id: str = "",
        prompt_version: str = "",
    ) -> Request:
        return cls(
            model=respondent.model,
            messages=tuple((r, c) for r, c in messages),
            temperature=respondent.temperature,
            top_p=respondent.top_p,
            max_tokens=max_tokens,
            seed=respondent.seed,
            sample=sample,
            prompt_id=prompt_id,
            prompt_version=prompt_version,
        )

    def canonical(self, card: ModelCard) -> dict[str, Any]:
        """What identifies the call: everything that can change the answer, nothing that cannot.

        The endpoint URL is left out on purpose (a local server's port changes per run);
        the served model id, the API kind and, for plain completions, the prompt template are in.
        """
        canon: dict[str, Any] = {
            "model": self.model,
            "model_id": card.model,
            "api": card.api,
            "messages": [{"role": r, "content": c} for r, c in self.messages],
            "params": {
                # floats, so a grid written as 1 or 1.0 gives the same key
                "temperature": float(self.temperature),
                "top_p": float(self.top_p),
                "max_tokens": self.max_tokens,
                "seed": self.seed,
            },
            "sample": self.sample,
            "prompt_id": self.prompt_id,
            "prompt_version": self.prompt_version,
        }
        if card.api == "completions":
            canon["prompt_template"] = card.prompt_template
            canon["stop"] = list(card.stop)
        if self.extra:
            canon["extra"] = dict(self.extra)
        return canon

    def key(self, card: ModelCard) -> str:
        """``request_key(self.canonical(card))``, written directly when every part has its plain type."""
        text = _canonical_text(self, card)
        if text is None:
            return request_key(self.canonical(card))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]

    def estimated_tokens(self) -> tuple[int, int]:
        """(prompt, completion) tokens at most: a rough prompt count plus message overhead, and max_tokens."""
        return sum(estimate_tokens(c) for _, c in self.messages) + MESSAGE_OVERHEAD_TOKENS, self.max_tokens

    def describe(self) -> str:
        return (
            f"model={self.model} prompt={self.prompt_id}@{self.prompt_version} sample={self.sample} "
            f"temperature={self.temperature:g} top_p={self.top_p:g} seed={self.seed}"
        )


_TEXT = json.encoder.encode_basestring  # how canonical_json writes a string (ensure_ascii=False), quotes included
_SEEDS = (int, type(None))


def _canonical_text(r: Request, card: ModelCard) -> str | None:
    """The canonical JSON of ``r.canonical(card)`` as ``canonical_json`` writes it (sorted keys, no spaces),
    built without the dict and the encoder: replaying a store keys every request, and this is ~2x faster.
    None when a part is not of its plain type (extra parameters, a number that is a bool or not finite,
    text that is not a string): then the encoder writes it. A test checks both agree on random requests."""
    if r.extra or type(r.max_tokens) is not int or type(r.sample) is not int or type(r.seed) not in _SEEDS:
        return None
    t, p = float(r.temperature), float(r.top_p)
    if not (math.isfinite(t) and math.isfinite(p)):
        return None
    api, seed = card.api, "null" if r.seed is None else repr(r.seed)
    try:  # _TEXT refuses anything but a string (TypeError)
        messages = ",".join([f'{{"content":{_TEXT(c)},"role":{_TEXT(role)}}}' for role, c in r.messages])
        text = (
            f'{{"api":{_TEXT(api)},"messages":[{messages}],"model":{_TEXT(r.model)},"model_id":{_TEXT(card.model)},'
            f'"params":{{"max_tokens":{r.max_tokens!r},"seed":{seed},"temperature":{t!r},"top_p":{p!r}}},'
            f'"prompt_id":{_TEXT(r.prompt_id)},'
        )
        if api == "completions":
            template = card.prompt_template
            stop = ",".join([_TEXT(x) for x in card.stop])
            text += f'"prompt_template":{"null" if template is None else _TEXT(template)},'
            tail = f',"stop":[{stop}]}}'
        elif api == "chat":
            tail = "}"
        else:
            return None
        return f'{text}"prompt_version":{_TEXT(r.prompt_version)},"sample":{r.sample!r}{tail}'
    except TypeError:
        return None


def respondent_columns(request: Request, card: ModelCard) -> dict[str, Any]:
    """Who answered a request: the respondent id and the model's description (table columns)."""
    respondent = Respondent(request.model, request.temperature, request.top_p, request.seed)
    return {
        "respondent": respondent.id,
        "model": request.model,
        "family": card.family,
        "params_b": card.params_b,
        "training_stage": card.training_stage,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "seed": request.seed,
    }


def panel_requests(
    panel: Panel,
    items: Sequence[tuple[str, Sequence[tuple[str, str]]]],
    version: str,
    *,
    models: Sequence[str] | None = None,
    respondents_per_model: int | None = None,
) -> list[Request]:
    """One request per respondent x instrument item x sample, in a stable order.

    ``items`` are (prompt id, messages) pairs: the elicitation prompts, or the projective stems.
    ``models`` keeps only those models; ``respondents_per_model`` only each model's first respondents.
    """
    keep = set(models if models is not None else panel.models)
    taken: dict[str, int] = {}
    requests = []
    for respondent in panel.respondents():
        if respondent.model not in keep:
            continue
        taken[respondent.model] = taken.get(respondent.model, 0) + 1
        if respondents_per_model and taken[respondent.model] > respondents_per_model:
            continue
        for prompt_id, messages in items:
            for sample in range(panel.samples):
                requests.append(
                    Request.for_respondent(
                        respondent,
                        messages,
                        max_tokens=panel.max_tokens,
                        sample=sample,
                        prompt_id=prompt_id,
                        prompt_version=version,
                    )
                )
    return requests
