"""Benchmark of the LLM layer: live throughput against the loopback fault server, and replay speed.

    .venv/bin/python benchmarks/bench_llm.py            # about 1 minute
    .venv/bin/python benchmarks/bench_llm.py --quick    # fewer requests, for a smoke check

Live: ``LLMRunner`` in live mode (new store, every request a miss) against
``tests/fault_server.py`` in a separate process with 100 ms added to every request, at
concurrency 1, 8, 32 and 64; the ideal is concurrency / latency. Baseline: the plain
synchronous ``openai`` client called one request at a time in a loop, as PsychoBench-style
tools do. Replay: a store of 50,000 records loaded (``ResponseStore``, which validates every
line and its key) and looked up by ``LLMRunner`` in replay mode. Each figure is the median of
3 repeats. Floors: at concurrency 32 at least 80% of the ideal (issue 2); replay at least
45,000 records/s end to end (issue 22: the validating loader first fell to 22,734). The exit code
is 1 if a floor is missed. ``--replay-only`` measures the replay alone (no server, about 20 s).

On a shared machine the live figures depend on the load: the client needs ~1.3 ms of CPU per
call, and a busy machine delays every wake-up. The row "bare aiohttp client" (no SDK, no store,
~0.2 ms per call) shows the ceiling the machine allows at the time; the CPU column does not
depend much on the load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import openai

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the fault server is test equipment: tests/fault_server.py
    sys.path.insert(0, str(ROOT))

from tests.fault_server import FaultServer, write_card  # noqa: E402
from valuelex.llm.cards import load_model_cards  # noqa: E402
from valuelex.llm.limits import Limits  # noqa: E402
from valuelex.llm.request import Request  # noqa: E402
from valuelex.llm.runner import LLMRunner  # noqa: E402
from valuelex.llm.store import SCHEMA, ResponseStore, canonical_json  # noqa: E402

KEY_ENV = "VALUELEX_BENCH_KEY"
LIVE_FLOOR = 0.80
REPLAY_FLOOR = 45_000


def make_requests(model: str, n: int, tag: str) -> list[Request]:
    return [
        Request(model, (("user", f"{tag} question {i}: what do you value?"),), 0.7, 1.0, 32, prompt_id=f"q{i}")
        for i in range(n)
    ]


def live_rate(cards_dir: Path, concurrency: int, n: int, tag: str) -> tuple[float, float]:
    """(requests per second, client CPU ms per request) of one live run of ``n`` fresh requests."""
    cards = load_model_cards(cards_dir)
    with tempfile.TemporaryDirectory() as root:
        runner = LLMRunner(
            cards,
            ResponseStore(root),
            mode="live",
            limits=Limits(concurrency=concurrency, timeout_s=60),
            progress=False,
        )
        reqs = make_requests("bench", n, tag)
        started, cpu = time.perf_counter(), time.process_time()
        records = runner.run(reqs)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    bad = [r for r in records if r["status"] != "ok"]
    if bad:
        raise RuntimeError(f"{len(bad)} requests failed, e.g. {bad[0]['error']}")
    return n / elapsed, 1000 * cpu / n


def sequential_rate(base_url: str, n: int, tag: str) -> tuple[float, float]:
    """The plain synchronous openai client, one call after another: (requests/s, CPU ms per request)."""
    client = openai.OpenAI(base_url=base_url, api_key=os.environ[KEY_ENV], max_retries=0, timeout=60)
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        resp = client.chat.completions.create(
            model="fault-model",
            messages=[{"role": "user", "content": f"{tag} question {i}: what do you value?"}],
            temperature=0.7,
            top_p=1.0,
            max_tokens=32,
        )
        assert resp.choices[0].message.content
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    client.close()
    return n / elapsed, 1000 * cpu / n


def raw_rate(base_url: str, concurrency: int, n: int, tag: str) -> tuple[float, float]:
    """A bare aiohttp client (no SDK, no store): what this machine and the server allow at this concurrency."""

    async def go() -> float:
        todo = list(range(n))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

            async def worker() -> None:
                while todo:
                    body = {"model": "fault-model", "messages": [{"role": "user", "content": f"{tag} {todo.pop()}"}]}
                    async with session.post(f"{base_url}/chat/completions", json=body) as resp:
                        assert (await resp.json())["choices"][0]["message"]["content"]

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return n / (time.perf_counter() - started)

    cpu = time.process_time()
    rate = asyncio.run(go())
    return rate, 1000 * (time.process_time() - cpu) / n


def build_replay_store(cards_dir: Path, root: Path, n: int) -> list[Request]:
    """A store of ``n`` final records, one per request, written as the store writes them."""
    card = load_model_cards(cards_dir)["bench"]
    reqs = make_requests("bench", n, "replay")
    answer = "Honesty, kindness, fairness and curiosity matter most to me, and so does " * 4
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "bench.jsonl", "w", encoding="utf-8") as fh:
        for i, r in enumerate(reqs):
            canon = r.canonical(card)
            rec = {
                "schema": SCHEMA,
                "key": r.key(card),
                "request": canon,
                "attempt": 1,
                "status": "ok",
                "final": True,
                "usable": True,
                "text": f"{answer}{i}",
                "refusal": None,
                "finish_reason": "stop",
                "served_model": "fault-model",
                "response_id": f"fault-{i}",
                "usage": {"prompt_tokens": 12, "completion_tokens": 60},
                "cost_usd": 0.0001,
                "latency_s": 0.1,
                "timestamp": "2026-01-01T00:00:00.000+00:00",
                "error": None,
            }
            fh.write(canonical_json(rec) + "\n")
    return reqs


def replay_rates(cards_dir: Path, root: Path, reqs: list[Request]) -> tuple[float, float, float, float]:
    """Records/s for loading the store and replaying every request: (end to end, load, lookup, per CPU second)."""
    cards = load_model_cards(cards_dir)
    t0, cpu = time.perf_counter(), time.process_time()
    store = ResponseStore(root)
    t1 = time.perf_counter()
    records = LLMRunner(cards, store, mode="replay", progress=False).run(reqs)
    t2, cpu = time.perf_counter(), time.process_time() - cpu
    assert len(records) == len(reqs) and records[-1]["text"].endswith(str(len(reqs) - 1))
    assert store.stats.final == len(reqs) and not store.stats.issues
    n = len(reqs)
    return n / (t2 - t0), n / (t1 - t0), n / (t2 - t1), n / cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--replay-records", type=int, default=50_000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--quick", action="store_true", help="fewer requests per measurement")
    parser.add_argument("--replay-only", action="store_true", help="measure the replay from the store alone")
    args = parser.parse_args(argv)
    os.environ.setdefault(KEY_ENV, "sk-" + "bench-not-a-real-key")
    latency = args.latency_ms / 1000.0
    scale = 0.25 if args.quick else 1.0
    load_before = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory() as tmp, FaultServer(latency_ms=args.latency_ms) as server:
        cards_dir = Path(tmp) / "cards"
        write_card(cards_dir, "bench", server.base_url, api_key_env=KEY_ENV, price=(0.0, 0.0))
        if args.replay_only:
            args.concurrency = []
        else:
            live_rate(cards_dir, 8, 16, "warm-up")  # imports, first connections

        n_seq = max(10, int(30 * scale))
        if not args.replay_only:
            runs = [sequential_rate(server.base_url, n_seq, f"seq{k}") for k in range(args.repeats)]
            rows.append(("sequential openai client (baseline)", 1, n_seq, runs, 1 / latency))
        for c in args.concurrency:
            n = max(int(30 * scale), int(20 * c * scale))
            runs = [live_rate(cards_dir, c, n, f"c{c}r{k}") for k in range(args.repeats)]
            rows.append(("LLMRunner live", c, n, runs, c / latency))
            if c == 32:
                runs = [raw_rate(server.base_url, c, n, f"raw{k}") for k in range(args.repeats)]
                rows.append(("bare aiohttp client, no SDK or store (machine's ceiling)", c, n, runs, c / latency))

        replay_root = Path(tmp) / "replay"
        reqs = build_replay_store(cards_dir, replay_root, args.replay_records)
        replay = [replay_rates(cards_dir, replay_root, reqs) for _ in range(args.repeats)]

    print(
        f"\nLLM layer benchmark: fault server with {args.latency_ms:g} ms latency on 127.0.0.1; "
        f"median of {args.repeats}; Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"1-min load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after\n"
    )
    print(
        "| mode | concurrency | requests | requests/s (median) | min-max | ideal | % of ideal | client CPU ms/request |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    share_at_32 = None
    for mode, c, n, runs, ideal in rows:
        rates = [r for r, _ in runs]
        med, cpu = statistics.median(rates), statistics.median(x for _, x in runs)
        if mode == "LLMRunner live" and c == 32:
            share_at_32 = med / ideal
        print(
            f"| {mode} | {c} | {n} | {med:.1f} | {min(rates):.1f}-{max(rates):.1f} | {ideal:.0f} "
            f"| {100 * med / ideal:.0f}% | {cpu:.2f} |"
        )
    end, load, lookup, per_cpu = (statistics.median(x) for x in zip(*replay, strict=True))
    print(f"\n| replay from the store ({args.replay_records:,} records) | records/s (median) |")
    print("|---|---:|")
    print(f"| load (ResponseStore: parse and validate every line, check its key) | {load:,.0f} |")
    print(f"| lookup (LLMRunner replay: key every request, fetch) | {lookup:,.0f} |")
    print(f"| load + lookup, end to end | {end:,.0f} |")
    print(f"| load + lookup, per second of this process's CPU time | {per_cpu:,.0f} |")
    ok = True
    if share_at_32 is not None:
        met = share_at_32 >= LIVE_FLOOR
        ok &= met
        print(f"\nfloor: concurrency 32 at {100 * share_at_32:.0f}% of ideal (>= {100 * LIVE_FLOOR:.0f}%): ", end="")
        print("met" if met else "MISSED")
    met = end >= REPLAY_FLOOR
    ok &= met
    print(f"floor: replay {end:,.0f} records/s (>= {REPLAY_FLOOR:,}): {'met' if met else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
