"""Benchmark of the simulated population: answers per second, in process and through LLMRunner.

    .venv/bin/python benchmarks/bench_simulated.py            # the paper panel (7,920 answers), ~2 minutes
    .venv/bin/python benchmarks/bench_simulated.py --quick    # the small panel (720 answers)

In process: ``Population.answer`` on every request of the panel (the cost of writing an answer).
Through the server: ``LLMRunner`` in live mode (a new store, every request a miss) against
``SimulatedServer`` on 127.0.0.1, at concurrency 8, 16 and 32, the elicitation panel of the paper's
shape (33 models x 16 settings x 15 prompts) or the small one. Each figure is the median of
``--repeats`` runs. On a shared machine the figures depend on the load; the server and the client
each use one core.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from valuelex import elicit  # noqa: E402
from valuelex.llm.cards import load_panel  # noqa: E402
from valuelex.llm.limits import Limits  # noqa: E402
from valuelex.llm.runner import LLMRunner  # noqa: E402
from valuelex.llm.store import ResponseStore  # noqa: E402
from valuelex.simulated import Population, SimulatedServer, write_configs  # noqa: E402
from valuelex.simulated.recovery import ask_of  # noqa: E402


def in_process(requests: list, cards: dict, repeats: int) -> None:
    """``Population.answer`` on the bodies the server reads, a fresh population (nothing cached) each time."""
    asks = [ask_of(r.canonical(cards[r.model])) for r in requests]
    rates = []
    for _ in range(repeats):
        fresh = Population.load()
        start = time.perf_counter()
        for a in asks:
            fresh.answer(a)
        rates.append(len(asks) / (time.perf_counter() - start))
    print(f"in process: {statistics.median(rates):,.0f} answers/s ({len(asks):,} answers)", flush=True)


def through_runner(requests: list, cards: dict, concurrency: int, repeats: int) -> None:
    """``LLMRunner`` in live mode, a new store each time (every request a miss)."""
    rates = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as store:
            runner = LLMRunner(
                cards, ResponseStore(store), mode="live", limits=Limits(concurrency=concurrency), progress=False
            )
            start = time.perf_counter()
            runner.run(requests)
            rates.append(len(requests) / (time.perf_counter() - start))
    print(
        f"LLMRunner, concurrency {concurrency} (capped by each card's limits.concurrency 16): "
        f"{statistics.median(rates):,.0f} answers/s (median of {repeats}; {', '.join(f'{r:,.0f}' for r in rates)})",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the small panel (720 answers)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 16, 32])
    args = parser.parse_args()
    shape = "small" if args.quick else "paper"
    population = Population.load()
    print(f"simulated population benchmark, panel {shape!r}; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        server = SimulatedServer(port=0, log_path=Path(tmp) / "server.log")
        with server:
            write_configs(population, Path(tmp) / "cards", Path(tmp) / "panels", server.port)
            panel = load_panel(Path(tmp) / "panels" / f"sim_{shape}.yaml")
            requests = elicit.build_requests(panel, elicit.load_prompts())
            in_process(requests, panel.cards, args.repeats)
            for concurrency in args.concurrency:
                through_runner(requests, panel.cards, concurrency, args.repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
