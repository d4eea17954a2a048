"""Benchmark: embedding 300 words with the default model must take under 2 s on a 2-core machine.

    .venv/bin/python benchmarks/bench_embeddings.py [--words 300] [--repeats 7] [--threads 1 2]

Times, separately: importing sentence-transformers/torch, loading the model (each repeat a new
SentenceTransformer from the same folder, so the files are in the OS cache after the first),
encoding the words with no embedding cache (median over repeats after one warm-up), and a fully
cached ``Embedder.embed_words`` call (what a rerun of notebook 05 costs). The words are the first
alphabetic whole words of 5+ letters in the model's own vocabulary, every 7th one: fixed, with no
data needed. Exit status 1 if the median encode time is over the budget.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

BUDGET_S = 2.0


def benchmark_words(model_dir: Path, n: int) -> list[str]:
    vocab = (model_dir / "vocab.txt").read_text(encoding="utf-8").split()
    candidates = [w for w in vocab if w.isalpha() and w.isascii() and len(w) >= 5]
    return candidates[::7][:n]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, nargs="+", default=[1], help="torch thread counts to time")
    parser.add_argument("--model-dir", default=None, help="a sentence-transformers folder (default: all-MiniLM-L6-v2)")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    import torch
    from sentence_transformers import SentenceTransformer

    from valuelex import semantic

    import_s = time.perf_counter() - started

    model_dir = Path(args.model_dir) if args.model_dir else semantic.default_model_dir()
    words = benchmark_words(model_dir, args.words)

    loads = []
    for _ in range(max(3, args.repeats // 2)):
        t = time.perf_counter()
        SentenceTransformer(str(model_dir), device="cpu")
        loads.append(time.perf_counter() - t)

    with tempfile.TemporaryDirectory() as cache:
        embedder = semantic.Embedder(model_dir, cache_dir=cache)
        embedder.load_model()
        encode = {}
        for threads in args.threads:
            embedder.threads = threads
            embedder.encode(words)  # warm-up
            times = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                embedder.encode(words)
                times.append(time.perf_counter() - t)
            encode[threads] = times
        embedder.threads = 1
        embedder.embed_words(words)  # fills the cache
        t = time.perf_counter()
        semantic._fingerprint.cache_clear()
        semantic.model_fingerprint(model_dir)
        fingerprint_s = time.perf_counter() - t
        cached = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            rerun = semantic.Embedder(model_dir, cache_dir=cache)
            rerun.embed_words(words)
            cached.append(time.perf_counter() - t)
            assert rerun.encoded == 0 and not rerun.model_loaded

    print(f"model: {model_dir}")
    print(f"words: {len(words)} (e.g. {', '.join(words[:5])}); repeats: {args.repeats}; torch {torch.__version__}")
    print(f"import torch + sentence-transformers + valuelex.semantic: {import_s:.2f} s (once)")
    print(f"model load: first {loads[0]:.2f} s, median of the rest {statistics.median(loads[1:]):.2f} s")
    for threads, times in encode.items():
        print(
            f"encode {len(words)} words, {threads} torch thread(s): median {statistics.median(times):.3f} s "
            f"(min {min(times):.3f}, max {max(times):.3f})"
        )
    print(f"model fingerprint (sha256 of the model folder, once per process): {fingerprint_s:.2f} s")
    print(f"cached rerun (new Embedder + read cache, no model): median {statistics.median(cached) * 1000:.1f} ms")
    median_1 = statistics.median(encode.get(1, next(iter(encode.values()))))
    verdict = "OK" if median_1 < BUDGET_S else "OVER BUDGET"
    print(f"budget: encode {len(words)} words < {BUDGET_S:.0f} s -> {verdict} ({median_1:.3f} s)")
    return 0 if median_1 < BUDGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
