"""Benchmark: judged completions per second of the stance scorer's judge, before and after issue 22.

    export VALUELEX_MODELS_DIR=/work/main/.models   # where the GGUF files are
    .venv/bin/python benchmarks/bench_judge.py [--stems 2] [--repeats 3] [--load 0] [--configs before after]

The judge is the log-probability judge (``LogprobJudge``: Qwen2.5-Coder-1.5B-Instruct Q4_K_M, one
token, top-20 log-probabilities), called live through the real ``LLMRunner`` and ``openai``
client into a fresh store. The cases are the committed panel's (``projective_local``, replayed):
every completion of the first ``--stems`` stems of one sub-dimension (``--subdimension``), as a
paper-scale panel has them (many respondents per stem; the default run judges 1,355 such cases).
Configurations (server; order of the calls):

- ``before``: as until issue 22: one ``python -m llama_cpp.server`` with ``--n_threads`` = the
  number of cores (``--n_threads_batch`` at its default, also the number of cores); calls ordered
  by rubric, then in panel order;
- ``1thread``: the same server and order, with one thread;
- ``patched``: one single-threaded ``valuelex.llm.llama_server`` (logits and log-probabilities computed
  only for the tokens an answer needs); order as before;
- ``pool``: what ``LLMRunner`` starts now, ``LlamaServerPool`` (one single-threaded
  ``valuelex.llm.llama_server`` per core, at most 4, one request at a time each); order as before;
- ``after``: the pool, with the calls ordered by their text (``judge.call_order``: rubric, then
  stem), as ``LogprobJudge`` asks them now.

Every configuration's servers are started once (start-up printed) and stay up; the configurations
then run ``--repeats`` times each, interleaved (the order rotates every round), so they meet the
same machine state. Printed: the median wall time and judged completions per second of each, the
ratio to the first configuration, the load average before and after, and whether every
configuration's log-probabilities are the same bytes as the first's and as the committed verdicts
in ``data/raw/judge/``; and where the time goes, from llama.cpp's own log line of every call (calls,
prompt tokens evaluated per call, ms per evaluated token per server, and the servers' evaluation
time as a share of the rounds' wall time). ``--load N`` runs N CPU-bound processes beside the benchmark for its whole
duration (the state of a machine shared with other jobs, made repeatable); they stop with it.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from valuelex.core import paths
from valuelex.llm.cards import load_model_cards
from valuelex.llm.local import LlamaServer, LlamaServerPool, server_layout, verify_gguf
from valuelex.llm.store import ResponseStore
from valuelex.projective import administer, load_instrument, scoring_cases
from valuelex.projective import judge as judge_module
from valuelex.projective.instrument import DEFAULT_JUDGE
from valuelex.projective.judge import LogprobJudge, answer_distribution

CALL_ORDER = judge_module.call_order

CONFIGS = ("before", "1thread", "patched", "pool", "after")
#: Configurations whose calls are ordered as before issue 22 (by rubric, then in the order of the cases).
RUBRIC_ORDER = ("before", "1thread", "patched", "pool")


class UpstreamServer(LlamaServer):
    """The server as started before issue 22: upstream's module, ``--n_threads`` only."""

    def __init__(self, *args: object, module: str = "llama_cpp.server", batch_threads: bool = False, **kw: object):
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.module, self.batch_threads = module, batch_threads

    def command(self) -> list[str]:
        cmd = super().command()
        cmd[cmd.index("valuelex.llm.llama_server")] = self.module
        if not self.batch_threads:  # before issue 22 only --n_threads was passed
            i = cmd.index("--n_threads_batch")
            del cmd[i : i + 2]
        return cmd


def start(config: str, card, log_dir: Path) -> tuple[list[str], object]:
    path = verify_gguf(card, paths.MODELS_DIR)
    cpus = os.cpu_count() or 1
    if config == "before":
        server = UpstreamServer(path, card.model, n_ctx=card.n_ctx, n_threads=cpus, log_path=log_dir / "before.log")
        return [server.start()], server
    if config == "1thread":
        server = UpstreamServer(
            path, card.model, n_ctx=card.n_ctx, n_threads=1, batch_threads=True, log_path=log_dir / "1thread.log"
        )
        return [server.start()], server
    if config == "patched":
        server = LlamaServer(path, card.model, n_ctx=card.n_ctx, n_threads=1, log_path=log_dir / "patched.log")
        return [server.start()], server
    if config in ("pool", "after"):
        pool = LlamaServerPool(path, card.model, n_ctx=card.n_ctx, log_dir=log_dir / config)
        return pool.start(), pool
    raise ValueError(config)


def panel_cases(stems: int, subdimension: str):
    """Every case of the committed panel's first ``stems`` stems of ``subdimension`` (replayed)."""
    completions, _ = administer(
        "projective_local", mode="replay", progress=False, store=ResponseStore(paths.DATASET / "projective")
    )
    cases = scoring_cases(completions, load_instrument())
    cases = cases[cases["subdimension"] == subdimension]
    return cases[cases["stem"].isin(sorted(cases["stem"].unique())[:stems])].reset_index(drop=True)


def burn(until: float) -> None:  # pragma: no cover - a load process
    x = 0
    while time.monotonic() < until:
        x += 1


def rubric_order(requests: list) -> list[int]:
    """The call order before issue 22."""
    return sorted(range(len(requests)), key=lambda i: (requests[i].prompt_id, i))


def judge_once(cases, urls: list[str], cards, config: str) -> tuple[float, dict[str, str]]:
    judge_module.call_order = rubric_order if config in RUBRIC_ORDER else CALL_ORDER
    with tempfile.TemporaryDirectory() as tmp:
        judge = LogprobJudge(DEFAULT_JUDGE, mode="live", cards=cards, store=ResponseStore(Path(tmp)), progress=False)
        judge.runner.endpoints = {DEFAULT_JUDGE: urls}
        started = time.perf_counter()
        scored = judge.score(cases)
        elapsed = time.perf_counter() - started
        store = ResponseStore(Path(tmp))
        logprobs = {k: json.dumps(store.get(k)["logprobs"], sort_keys=True) for k in scored["judge_key"]}
    assert (scored["status"] == "ok").all(), scored["status"].value_counts()
    return elapsed, logprobs


def expected_rating(logprobs: str) -> float:
    probs, _ = answer_distribution(json.loads(logprobs))
    return float(probs @ np.arange(1, 6))


def difference(a: dict[str, str], b: dict[str, str]) -> str:
    """How far two sets of verdicts (same keys) are apart: identical bytes, or the largest change of E."""
    keys = [k for k in a if k in b]
    same = sum(a[k] == b[k] for k in keys)
    if same == len(keys):
        return f"identical bytes ({same} of {len(keys)})"
    delta = max(abs(expected_rating(a[k]) - expected_rating(b[k])) for k in keys)
    return f"{same} of {len(keys)} identical; largest |change of E| {delta:.3f}"


def eval_log(log_dir: Path, config: str) -> tuple[int, int, float]:
    """(calls, prompt tokens evaluated, seconds evaluating) over a configuration's server logs so far:
    llama.cpp prints ``prompt eval time = X ms / N tokens`` for every call."""
    files = (
        [log_dir / f"{config}.log"]
        if (log_dir / f"{config}.log").exists()
        else sorted((log_dir / config).glob("*.log"))
    )
    calls = tokens = 0
    ms = 0.0
    for path in files:
        for line in path.read_text(errors="replace").splitlines():
            match = EVAL_LINE.search(line)
            if match:
                calls, ms, tokens = calls + 1, ms + float(match.group(1)), tokens + int(match.group(2))
    return calls, tokens, ms / 1000


EVAL_LINE = re.compile(r"prompt eval time =\s*([0-9.]+) ms /\s*([0-9]+) tokens")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stems", type=int, default=2, help="stems of the sub-dimension whose cases are judged")
    parser.add_argument("--subdimension", default="Ethical")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--load", type=int, default=0, help="CPU-bound processes run beside the benchmark")
    parser.add_argument("--configs", nargs="+", default=["before", "after"], choices=CONFIGS)
    parser.add_argument(
        "--dump", type=Path, default=None, help="write every configuration's log-probabilities here (JSON)"
    )
    args = parser.parse_args()
    cards = load_model_cards()
    card = cards[DEFAULT_JUDGE]
    cases = panel_cases(args.stems, args.subdimension)
    stored = ResponseStore(paths.DATASET / "judge")
    print(f"{len(cases)} panel cases: {args.subdimension}, stems {', '.join(sorted(cases['stem'].unique()))}")
    print(f"cores: {os.cpu_count()}; pool layout (servers, threads): {server_layout()}; load processes: {args.load}")
    print(f"load average before: {os.getloadavg()}")
    loaders = []
    log_dir = Path(tempfile.mkdtemp(prefix="bench_judge_"))
    servers: dict[str, tuple[list[str], object]] = {}
    try:
        for config in args.configs:
            t = time.perf_counter()
            servers[config] = start(config, card, log_dir)
            print(f"{config}: {len(servers[config][0])} server(s) up in {time.perf_counter() - t:.1f} s")
        until = time.monotonic() + 6 * 3600
        for _ in range(args.load):
            p = multiprocessing.Process(target=burn, args=(until,), daemon=True)
            p.start()
            loaders.append(p)
        for config in args.configs:  # warm-up: page the model in, one call each
            judge_once(cases.iloc[:1], servers[config][0], cards, config)
        times: dict[str, list[float]] = {c: [] for c in args.configs}
        evals: dict[str, list[tuple[int, int, float]]] = {c: [] for c in args.configs}
        answers: dict[str, dict[str, str]] = {}
        unstable: set[str] = set()
        for rep in range(args.repeats):
            rotated = args.configs[rep % len(args.configs) :] + args.configs[: rep % len(args.configs)]
            for config in rotated:
                before = eval_log(log_dir, config)
                elapsed, logprobs = judge_once(cases, servers[config][0], cards, config)
                after = eval_log(log_dir, config)
                evals[config].append(tuple(b - a for a, b in zip(before, after, strict=True)))  # type: ignore[arg-type]
                times[config].append(elapsed)
                answers.setdefault(config, logprobs)
                if answers[config] != logprobs:
                    unstable.add(config)
                print(f"  round {rep + 1} {config}: {elapsed:.1f} s ({len(cases) / elapsed:.3f} judged/s)", flush=True)
    finally:
        for p in loaders:
            p.terminate()
            p.join(5)
        for _, server in servers.values():
            server.stop()  # type: ignore[attr-defined]
        for p in loaders:
            if p.is_alive():
                p.kill()
    print(f"load average after: {os.getloadavg()}")
    base = statistics.median(times[args.configs[0]])
    print(f"\n| configuration | median s ({len(cases)} cases) | judged/s | vs {args.configs[0]} | runs (s) |")
    print("|---|---:|---:|---:|---|")
    for config in args.configs:
        med = statistics.median(times[config])
        runs = ", ".join(f"{t:.1f}" for t in times[config])
        print(f"| {config} | {med:.1f} | {len(cases) / med:.3f} | {base / med:.2f}x | {runs} |")
    print(
        "\nWhere the time goes (llama.cpp's own log of every call, summed over the rounds): calls that evaluated "
        "tokens, prompt tokens evaluated per call, ms per evaluated token (per server), and the servers' evaluation "
        "time as a share of the rounds' wall time x servers"
    )
    print("\n| configuration | calls | tokens per call | ms per token | evaluation / (wall x servers) |")
    print("|---|---:|---:|---:|---:|")
    for config in args.configs:
        calls, tokens, seconds = (sum(x) for x in zip(*evals[config], strict=True))
        n_servers = len(servers[config][0])
        busy = seconds / (sum(times[config]) * n_servers)
        per_call = tokens / calls if calls else float("nan")
        per_token = 1000 * seconds / tokens if tokens else float("nan")
        print(f"| {config} | {calls} | {per_call:.1f} | {per_token:.1f} | {busy:.0%} |")
    if args.dump:
        args.dump.write_text(json.dumps(answers, indent=0))
    first = answers[args.configs[0]]
    print(f"\nlog-probabilities compared with {args.configs[0]}'s (E = the judge's expected rating, 1-5):")
    for config in args.configs[1:]:
        print(f"  {config}: {difference(first, answers[config])}")
    committed = {k: json.dumps(stored.get(k)["logprobs"], sort_keys=True) for k in first if stored.get(k)}
    for config in args.configs:
        mine = {k: v for k, v in answers[config].items() if k in committed}
        print(
            f"  {config} vs the committed verdicts in data/raw/judge ({len(mine)} cases): {difference(committed, mine)}"
        )
        print(f"  {config}: the same bytes in every repeat: {config not in unstable}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
