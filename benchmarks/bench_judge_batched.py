"""Benchmark: the judge's last lever, several calls evaluated in one llama.cpp batch, measured.

    export VALUELEX_MODELS_DIR=/work/main/.models   # where the GGUF files are
    .venv/bin/python benchmarks/bench_judge_batched.py [--stems 2] [--batches 4 8 16 32] [--repeats 3] [--curve]

Not a product path: it calls llama.cpp in-process through llama-cpp-python's low-level API, not
through the server and the ``openai`` client, to find out how much a batched judge could gain
before anyone builds one (``docs/benchmarks.md``, "The stance judge").

The cases and requests are ``bench_judge.py``'s: every completion of the committed panel's first
``--stems`` stems of one sub-dimension, as ``LogprobJudge`` asks them, in ``judge.call_order``.
Each prompt is rendered with the model's own chat template and judged on one thread, two ways:

- ``sequential``: one prompt after another on one sequence; each evaluates only what differs from
  the prompt before (llama.cpp's cached prefix, as the server does), the logits of its last token
  only. This is the server's evaluation without HTTP, JSON and Python's sampling path.
- ``batched B``: groups of B consecutive prompts; the group's shared prefix (rubric, stem, the
  common start of the completions) is evaluated once on sequence 0 and its KV cache copied to
  sequences 1..B-1; then the B remainders go to llama.cpp as one batch, with logits at each
  sequence's last token.

Printed: each configuration's median wall time, judged prompts per second and ratio to
``sequential``, and the largest difference of the expected rating E (1-5) from the committed
verdicts in ``data/raw/judge/`` (floating point: how the prompt was cut into evaluated pieces).
``--curve`` first prints llama.cpp's time per token for a single sequence of n tokens (n = 1 ... 1,024),
which says how much any batching can gain on this CPU.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import llama_cpp as L
import numpy as np
from bench_judge import panel_cases
from llama_cpp import Llama
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from valuelex.core import paths
from valuelex.llm.cards import load_model_cards
from valuelex.llm.local import verify_gguf
from valuelex.llm.store import ResponseStore
from valuelex.projective.instrument import DEFAULT_JUDGE
from valuelex.projective.judge import LogprobJudge, call_order


class InProcessJudge:
    """One llama.cpp context with up to ``n_seq`` sequences sharing one KV cache, on one thread."""

    def __init__(self, model: Llama, n_seq: int, n_ctx: int = 4096):
        params = L.llama_context_default_params()
        params.n_ctx = params.n_batch = n_ctx
        params.n_ubatch = 512
        params.n_seq_max = n_seq
        params.n_threads = params.n_threads_batch = 1
        params.kv_unified = True  # one cache the sequences share, so a prefix can be copied
        self.ctx = L.llama_init_from_model(model._model.model, params)
        self.memory = L.llama_get_memory(self.ctx)
        self.batch = L.llama_batch_init(n_ctx, 0, n_seq)
        self.n_vocab = model.n_vocab()
        self.digits = [model.tokenize(str(d).encode(), add_bos=False, special=False)[0] for d in range(1, 6)]

    def decode(self, items: list[tuple[int, int, int, bool]]) -> None:
        """Evaluate (token, position, sequence, wants logits) items as one batch."""
        b = self.batch
        b.n_tokens = len(items)
        for k, (token, pos, seq, logits) in enumerate(items):
            b.token[k], b.pos[k], b.n_seq_id[k], b.logits[k] = token, pos, 1, logits
            b.seq_id[k][0] = seq
        if L.llama_decode(self.ctx, b) != 0:
            raise RuntimeError("llama_decode failed")

    def expected(self, i: int) -> float:
        """E[rating] from the answer digits' probabilities in the logits of batch item ``i``."""
        row = np.ctypeslib.as_array(L.llama_get_logits_ith(self.ctx, i), shape=(self.n_vocab,)).astype(np.float64)
        p = np.exp(row[self.digits] - row.max())
        return float(p @ np.arange(1, 6) / p.sum())

    def sequential(self, prompts: list[list[int]]) -> list[float]:
        L.llama_memory_clear(self.memory, True)
        cached: list[int] = []
        out = []
        for p in prompts:
            n = min(shared(cached, p), len(p) - 1)
            L.llama_memory_seq_rm(self.memory, 0, n, -1)
            self.decode([(t, n + j, 0, j == len(p) - n - 1) for j, t in enumerate(p[n:])])
            out.append(self.expected(len(p) - n - 1))
            cached = p
        return out

    def batched(self, prompts: list[list[int]], size: int) -> list[float]:
        L.llama_memory_clear(self.memory, True)
        cached: list[int] = []
        out = []
        for g in range(0, len(prompts), size):
            group = prompts[g : g + size]
            prefix = min(min(shared(group[0], q) for q in group), min(len(q) for q in group) - 1)
            n = min(shared(cached, group[0][:prefix]), prefix)
            for s in range(len(group)):
                L.llama_memory_seq_rm(self.memory, s, n if s == 0 else 0, -1)
            if prefix > n:
                self.decode([(t, n + j, 0, False) for j, t in enumerate(group[0][n:prefix])])
            for s in range(1, len(group)):
                L.llama_memory_seq_cp(self.memory, 0, s, 0, prefix)
            items: list[tuple[int, int, int, bool]] = []
            last = []
            for s, q in enumerate(group):
                items += [(t, prefix + j, s, j == len(q) - prefix - 1) for j, t in enumerate(q[prefix:])]
                last.append(len(items) - 1)
            self.decode(items)
            out += [self.expected(i) for i in last]
            cached = group[0][:prefix]
        return out


def shared(a: list[int], b: list[int]) -> int:
    """Length of the common prefix of two token lists."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def curve(model_path: str) -> None:
    model = Llama(model_path=model_path, n_threads=1, n_threads_batch=1, n_ctx=2048, n_batch=2048, verbose=False)
    tokens = model.tokenize(" ".join(["the quick brown fox jumps over the lazy dog and"] * 120).encode())
    print("one sequence of n tokens, one thread (median of 3):")
    for n in (1, 8, 16, 32, 64, 128, 256, 512, 1024):
        runs = []
        for _ in range(3):
            model.reset()
            t = time.perf_counter()
            model.eval(tokens[:n])
            runs.append(time.perf_counter() - t)
        med = statistics.median(runs)
        print(f"  n = {n:5d}: {med * 1000:8.1f} ms, {med * 1000 / n:6.2f} ms a token")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stems", type=int, default=2)
    parser.add_argument("--subdimension", default="Ethical")
    parser.add_argument("--batches", type=int, nargs="+", default=[4, 8, 16, 32])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--curve", action="store_true", help="first print the time per token by batch size")
    args = parser.parse_args()
    cards = load_model_cards()
    model_path = str(verify_gguf(cards[DEFAULT_JUDGE], paths.MODELS_DIR))
    print(f"load average before: {os.getloadavg()}")
    if args.curve:
        curve(model_path)
    cases = panel_cases(args.stems, args.subdimension)
    judge = LogprobJudge(DEFAULT_JUDGE, cards=cards, store=ResponseStore(paths.DATASET / "judge"), progress=False)
    requests = judge.requests(cases)
    order = call_order(requests)
    committed = judge.score(cases, stored_only=True)["judge_expected"].to_numpy()[order]

    model = Llama(model_path=model_path, n_threads=1, n_ctx=256, verbose=False)
    template = Jinja2ChatFormatter(
        template=model.metadata["tokenizer.chat_template"], eos_token="<|im_end|>", bos_token=""
    )

    def tokens(i: int) -> list[int]:
        prompt = template(messages=[{"role": r, "content": c} for r, c in requests[i].messages]).prompt
        return model.tokenize(prompt.encode(), add_bos=False, special=True)

    prompts = [tokens(i) for i in order]
    print(
        f"{len(prompts)} judge prompts ({args.subdimension}, {args.stems} stems), {np.mean([len(p) for p in prompts]):.0f} tokens each"
    )
    engine = InProcessJudge(model, max(args.batches))
    configs = [("sequential", 1)] + [(f"batched {b}", b) for b in args.batches]
    times: dict[str, list[float]] = {name: [] for name, _ in configs}
    worst: dict[str, float] = {}
    for rep in range(args.repeats):
        for name, size in configs[rep % len(configs) :] + configs[: rep % len(configs)]:
            t = time.perf_counter()
            e = engine.sequential(prompts) if size == 1 else engine.batched(prompts, size)
            times[name].append(time.perf_counter() - t)
            worst[name] = max(worst.get(name, 0.0), float(np.max(np.abs(np.array(e) - committed))))
    base = statistics.median(times["sequential"])
    print("| configuration | median s | judged/s (one thread) | vs sequential | max abs E - committed | runs (s) |")
    print("|---|---:|---:|---:|---:|---|")
    for name, _ in configs:
        med = statistics.median(times[name])
        runs = ", ".join(f"{t:.1f}" for t in times[name])
        print(f"| {name} | {med:.1f} | {len(prompts) / med:.3f} | {base / med:.2f}x | {worst[name]:.4f} | {runs} |")
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
