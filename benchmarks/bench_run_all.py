"""Benchmark the full default run: wall time per notebook, peak memory, and determinism.

    .venv/bin/python benchmarks/bench_run_all.py [--runs 2]

Runs ``./run_all.sh`` (venv already present) ``--runs`` times, sampling the resident memory of
the whole process tree every 0.2 s, and compares the bytes of every table in
``data/processed/`` and every figure in ``figures/`` between runs. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def digests() -> dict[str, str]:
    files = sorted((ROOT / "data" / "processed").glob("*.csv")) + sorted((ROOT / "figures").glob("*.*"))
    return {str(p.relative_to(ROOT)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def one_run() -> tuple[float, int, dict[str, float], dict[str, str]]:
    started = time.monotonic()
    proc = subprocess.Popen(["./run_all.sh"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    ps = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss(ps))
        time.sleep(0.2)
    if proc.returncode != 0:
        sys.exit(f"run_all.sh failed with exit code {proc.returncode}")
    wall = time.monotonic() - started
    timings = {}
    for line in (ROOT / "build" / "timings.tsv").read_text().splitlines():
        name, _, secs = line.partition("\t")
        timings[name] = float(secs)
    return wall, peak, timings, digests()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    runs = [one_run() for _ in range(args.runs)]
    names = list(runs[0][2])
    print("| notebook | " + " | ".join(f"run {i + 1} (s)" for i in range(len(runs))) + " | median (s) |")
    print("|---|" + "---|" * (len(runs) + 1))
    for n in names:
        vals = [r[2].get(n, float("nan")) for r in runs]
        print(f"| {n} | " + " | ".join(f"{v:.0f}" for v in vals) + f" | {statistics.median(vals):.0f} |")
    walls = [r[0] for r in runs]
    peaks = [r[1] / 2**30 for r in runs]
    print("| **total wall time** | " + " | ".join(f"{w:.0f}" for w in walls) + f" | {statistics.median(walls):.0f} |")
    print(
        "| **peak memory, process tree (GiB)** | "
        + " | ".join(f"{p:.2f}" for p in peaks)
        + f" | {statistics.median(peaks):.2f} |"
    )
    if len(runs) > 1:
        first = runs[0][3]
        differing = sorted(k for r in runs[1:] for k in first if r[3].get(k) != first[k])
        print(
            f"\n{len(first)} tables and figures compared across {len(runs)} runs: "
            + ("all byte-identical" if not differing else f"{len(differing)} differ: {', '.join(differing[:10])}")
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
