"""llama-cpp-python's OpenAI-compatible server, with one upstream inefficiency removed.

``python -m valuelex.llama_server ARGS`` is ``python -m llama_cpp.server ARGS`` (same arguments,
same app, same answers) after one change: when a request asks for log-probabilities,
llama-cpp-python (0.3.36, ``Llama._create_completion``) computes the log-softmax of the logits of
*every* token in the context -- about 230 rows of 151,936 for a judge prompt of Qwen2.5 -- and
then keeps only the rows of the generated tokens (``logits_to_logprobs(self._scores)[offset:]``).
Here ``Llama.logits_to_logprobs`` returns, for a matrix, an object that computes the log-softmax
only of the rows that are read, with upstream's own function, so every number is the same
(row-wise, the computation does not depend on the other rows; ``tests/test_llama_server.py``
checks that the values are bit-identical and that a served answer is the same bytes). It saved
about 0.3-0.9 s of a judge call here (``benchmarks/bench_judge.py``). Everything else is upstream's.
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


def main() -> None:
    from llama_cpp.server.__main__ import main as serve

    patch_logprobs()
    serve()


if __name__ == "__main__":
    main()
