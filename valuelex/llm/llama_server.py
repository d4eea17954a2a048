"""llama-cpp-python's OpenAI-compatible server, with two upstream inefficiencies removed.

``python -m valuelex.llm.llama_server ARGS`` is ``python -m llama_cpp.server ARGS`` (same arguments,
same app, same requests) after two changes to ``llama_cpp.Llama`` (0.3.36), both for requests that
ask for log-probabilities, which need the server's ``logits_all`` (on by default):

- ``logits_to_logprobs``: upstream computes the log-softmax of the logits of *every* token in the
  context -- about 230 rows of 151,936 for a judge prompt of Qwen2.5 -- and then keeps only the
  rows of the generated tokens (``logits_to_logprobs(self._scores)[offset:]``). Here it returns,
  for a matrix, an object that computes only the rows that are read, with upstream's own function:
  the same numbers, bit for bit (``tests/test_llama_server.py``).
- ``eval``: with ``logits_all`` upstream has llama.cpp compute the output layer (151,936 x 1,536
  for Qwen2.5-1.5B, a fifth of the model's work per token) for every prompt token and copies every
  row into ``scores``. Here only the last token of each batch gets logits, as without
  ``logits_all``; its row of ``scores`` is written. Every row that is read for an answer -- the
  last prompt token's and each generated token's (sampling, stopping, log-probabilities of the
  answer) -- is there; the rows of earlier prompt tokens are not, so this server does not serve
  ``echo`` with log-probabilities of the prompt (nothing in this project asks for them). The last
  token's logits come from the same weights through a one-row product instead of a many-row one,
  so they can differ from upstream's in the last bits (the answer digits' log-probabilities by at most 3e-6 on 12 judge prompts).

The first saved 0.3-0.9 s of a judge call on this machine, the second about a tenth of what
remains (``docs/benchmarks.md``, "The stance judge"). Everything else is upstream's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


class RowwiseLogprobs:
    """``upstream(logits)`` for a (tokens x vocabulary) matrix, computed only for the rows that are indexed."""

    __slots__ = ("_logits", "_upstream")

    def __init__(self, logits: np.ndarray, upstream: Callable[..., np.ndarray]):
        self._logits = logits
        self._upstream = upstream

    def __getitem__(self, index: Any) -> np.ndarray:
        if isinstance(index, (slice, int, np.integer)):  # rows: the log-softmax of each row is its own
            return self._upstream(self._logits[index])
        return self._upstream(self._logits)[index]

    def __len__(self) -> int:
        return len(self._logits)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._logits.shape)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self._upstream(self._logits)
        return out if dtype is None else out.astype(dtype)


def patch_logprobs() -> None:
    """Make ``Llama.logits_to_logprobs`` lazy over the rows of a matrix (vectors: upstream's, eagerly)."""
    from llama_cpp import Llama

    upstream = Llama.logits_to_logprobs
    if getattr(upstream, "valuelex_rowwise", False):
        return

    def logits_to_logprobs(logits: Any, axis: int = -1) -> Any:
        if isinstance(logits, np.ndarray) and logits.ndim == 2 and axis in (-1, 1):
            return RowwiseLogprobs(logits, upstream)
        return upstream(logits, axis=axis)

    logits_to_logprobs.valuelex_rowwise = True  # type: ignore[attr-defined]
    Llama.logits_to_logprobs = staticmethod(logits_to_logprobs)  # type: ignore[method-assign]


def patch_eval() -> None:
    """Make ``Llama.eval`` ask llama.cpp for the logits of the last token of each batch only."""
    from llama_cpp import Llama

    if getattr(Llama.eval, "valuelex_last_logits", False):
        return

    def eval(self: Llama, tokens: Any) -> None:  # upstream's Llama.eval, but logits only for the last token
        self._ctx.kv_cache_seq_rm(-1, self.n_tokens, -1)
        for i in range(0, len(tokens), self.n_batch):
            batch = tokens[i : min(len(tokens), i + self.n_batch)]
            n_past = self.n_tokens
            n_tokens = len(batch)
            self._batch.set_batch(batch=batch, n_past=n_past, logits_all=False)
            self._ctx.decode(self._batch)
            self.input_ids[n_past : n_past + n_tokens] = batch
            if self._logits_all:
                last = np.ctypeslib.as_array(self._ctx.get_logits(), shape=(self._n_vocab,))  # the one output row
                self.scores[n_past + n_tokens - 1, :] = last
            self.n_tokens += n_tokens
            self._requires_eval = False

    eval.valuelex_last_logits = True  # type: ignore[attr-defined]
    Llama.eval = eval  # type: ignore[method-assign]


def main() -> None:
    from llama_cpp.server.__main__ import main as serve

    patch_logprobs()
    patch_eval()
    serve()


if __name__ == "__main__":
    main()
