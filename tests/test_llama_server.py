"""``valuelex.llm.llama_server``: llama-cpp-python's server with log-probabilities computed only for the rows read."""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

from valuelex.core.errors import ConfigError
from valuelex.llm.llama_server import RowwiseLogprobs, patch_logprobs
from valuelex.llm.local import server_layout

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def log_softmax(logits, axis=-1):  # the same arithmetic as llama-cpp-python 0.3.36's Llama.logits_to_logprobs
    shifted = np.subtract(logits, np.amax(logits, axis=axis, keepdims=True), dtype=np.single)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


class Counting:
    def __init__(self):
        self.rows = 0

    def __call__(self, logits, axis=-1):
        self.rows += 1 if np.ndim(logits) == 1 else len(logits)
        return log_softmax(logits, axis)


def test_rowwise_logprobs_computes_only_the_rows_read_and_gives_the_same_bits():
    logits = (np.random.default_rng(0).standard_normal((230, 5000)) * 4).astype(np.single)
    upstream = Counting()
    lazy = RowwiseLogprobs(logits, upstream)
    assert len(lazy) == 230 and lazy.shape == (230, 5000) and upstream.rows == 0
    last = lazy[229:]  # what llama-cpp-python reads for a one-token answer: the rows from the last prompt token on
    assert upstream.rows == 1
    full = log_softmax(logits)
    assert np.array_equal(last, full[229:]) and last.dtype == full.dtype
    for index in (0, 7, slice(100, 103), slice(None)):
        assert np.array_equal(lazy[index], full[index])
    assert np.array_equal(np.asarray(lazy), full)


def test_server_layout_is_one_single_threaded_server_per_core(monkeypatch):
    monkeypatch.delenv("VALUELEX_LLAMA_SERVERS", raising=False)
    monkeypatch.delenv("VALUELEX_LLAMA_THREADS", raising=False)
    assert server_layout(2) == (2, 1) and server_layout(1) == (1, 1) and server_layout(16) == (4, 4)
    monkeypatch.setenv("VALUELEX_LLAMA_SERVERS", "1")
    monkeypatch.setenv("VALUELEX_LLAMA_THREADS", "2")
    assert server_layout(2) == (1, 2)
    monkeypatch.setenv("VALUELEX_LLAMA_SERVERS", "two")
    with pytest.raises(
        ConfigError, match="environment variable VALUELEX_LLAMA_SERVERS must be a whole number >= 1, got 'two'"
    ):
        server_layout(2)


def test_patched_llama_cpp_gives_upstream_values():
    if importlib.util.find_spec("llama_cpp") is None:
        if IN_CI:
            pytest.fail("llama-cpp-python is missing (./run_tests.sh installs it)")
        pytest.skip("llama-cpp-python is not installed")
    from llama_cpp import Llama

    upstream = Llama.logits_to_logprobs
    try:
        patch_logprobs()
        patch_logprobs()  # idempotent
        patched = Llama.logits_to_logprobs
        assert patched is not upstream and getattr(patched, "valuelex_rowwise", False)
        logits = (np.random.default_rng(1).standard_normal((40, 151936)) * 5).astype(np.single)
        for offset in (0, 39):
            assert np.array_equal(patched(logits)[offset:], upstream(logits)[offset:])
        assert np.array_equal(patched(logits[3]), upstream(logits[3]))  # a vector (streaming): upstream's, eagerly
        assert isinstance(patched(logits[3]), np.ndarray)
    finally:
        Llama.logits_to_logprobs = staticmethod(upstream)


@pytest.mark.llama
def test_patched_eval_computes_logits_of_the_last_token_only_and_answers_alike():
    """SmolLM2 in process: after ``patch_eval`` only the last prompt token's row of ``scores`` is written,
    and the answer (greedy text) and its log-probabilities are upstream's."""
    from valuelex.llm.cards import load_model_cards
    from valuelex.llm.local import gguf_path

    if (
        importlib.util.find_spec("llama_cpp") is None
        or not gguf_path(load_model_cards()["smollm2-135m-instruct"]).exists()
    ):
        if IN_CI:
            pytest.fail("llama-cpp-python or the SmolLM2 GGUF is missing (./run_tests.sh installs them)")
        pytest.skip("llama-cpp-python or the SmolLM2 GGUF is missing")
    from llama_cpp import Llama

    from valuelex.llm.llama_server import patch_eval

    path = str(gguf_path(load_model_cards()["smollm2-135m-instruct"]))
    prompt = "Rate from 1 to 5 how kind this is: 'I listen before I answer.' Rating:"

    def ask(llm: Llama) -> tuple[str, dict[str, float], int]:
        out = llm.create_completion(prompt, max_tokens=6, temperature=0.0, seed=0, logprobs=5)
        written = int(np.count_nonzero(np.abs(llm.scores[: llm.n_tokens]).sum(axis=1)))
        return out["choices"][0]["text"], out["choices"][0]["logprobs"]["top_logprobs"][0], written

    upstream_eval = Llama.eval
    kw = {"n_ctx": 256, "n_threads": 1, "n_threads_batch": 1, "logits_all": True, "verbose": False}
    try:
        text, top, written = ask(Llama(path, **kw))
        patch_eval()
        assert getattr(Llama.eval, "valuelex_last_logits", False)
        llm = Llama(path, **kw)
        llm.scores[:] = 0.0
        text2, top2, written2 = ask(llm)
    finally:
        Llama.eval = upstream_eval
    n_prompt = len(llm.tokenize(prompt.encode()))
    assert written >= n_prompt and written2 <= llm.n_tokens - n_prompt + 1  # the prompt's rows: one instead of all
    assert text2 == text and top2.keys() == top.keys()
    assert max(abs(top2[k] - top[k]) for k in top) < 1e-4
