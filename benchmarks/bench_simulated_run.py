"""Wall time and peak memory of each notebook of a run: ``valuelex run NAME --yes``, watched from outside.

Usage (the rehearsal of issue 22 at the paper's scale; docs/benchmarks.md)::

    nice -n 10 .venv/bin/python benchmarks/bench_simulated_run.py rehearsal [--only 01 02] [--interval 0.5]

It starts ``valuelex run NAME --yes`` (extra arguments are passed on) and samples, every
``--interval`` seconds, the resident memory (``VmRSS`` in ``/proc/PID/status``) of every process
under it. Each notebook runs in its own papermill process (whose command line names the
notebook); under it are the notebook's kernel and what the kernel starts (the simulated server,
llama.cpp servers, loky/joblib workers). Per notebook it reports

* the wall time ``valuelex run`` recorded (``runs/NAME/build/timings.tsv``);
* the kernel's peak RSS (the kernel process alone, sampled);
* the tree's peak RSS: the largest sum over the papermill process and everything under it at one
  sample (kernel, servers, workers; shared pages are counted once per process, so an upper bound).

Sampling can miss a peak shorter than the interval. The table prints as markdown; ``--json PATH``
writes the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = re.compile(r"notebooks/(\d\d_[\w]+)\.ipynb")


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as f:
                stat = f.read()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(parent, []).append(int(entry))
    return tree


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _descendants(pid: int, tree: dict[int, list[int]]) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(tree.get(p, []))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="the run (a name under configs/runs/ or a path)")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between samples (default 0.5)")
    parser.add_argument("--json", type=Path, help="write the numbers here")
    args, extra = parser.parse_known_args(argv)
    command = [str(ROOT / ".venv" / "bin" / "valuelex"), "run", args.run, "--yes", *extra]
    started = time.monotonic()
    child = subprocess.Popen(command, cwd=ROOT)
    kernel_peak: dict[str, int] = {}
    tree_peak: dict[str, int] = {}
    server_peak: dict[str, int] = {}
    while child.poll() is None:
        tree = _children()
        for pid in _descendants(child.pid, tree)[1:]:
            found = NOTEBOOK.search(_cmdline(pid))
            if not found or "papermill" not in _cmdline(pid):
                continue
            name = found.group(1)
            total = 0
            for p in _descendants(pid, tree):
                rss = _rss_kib(p)
                total += rss
                cmd = _cmdline(p)
                if "ipykernel" in cmd:
                    kernel_peak[name] = max(kernel_peak.get(name, 0), rss)
                elif "valuelex.simulated.server" in cmd or "llama_server" in cmd:
                    server_peak[name] = max(server_peak.get(name, 0), rss)
            tree_peak[name] = max(tree_peak.get(name, 0), total)
        time.sleep(args.interval)
    wall = time.monotonic() - started
    from valuelex.settings import load_run  # after the run: its import does not count

    output = load_run(args.run).output_dir
    timings = {}
    tsv = output / "build" / "timings.tsv"
    if tsv.exists():
        for line in tsv.read_text(encoding="utf-8").splitlines():
            name, seconds = line.split("\t")
            timings[name] = float(seconds)
    rows = []
    print(f"\n`valuelex run {args.run} --yes` exit code {child.returncode}, {wall:.0f} s in all\n")
    print("| notebook | wall time (s) | kernel peak RSS (MiB) | tree peak RSS (MiB) | servers' peak RSS (MiB) |")
    print("|---|---:|---:|---:|---:|")
    for name in sorted(set(tree_peak) | set(timings)):
        row = {
            "notebook": name,
            "seconds": timings.get(name),
            "kernel_mib": round(kernel_peak.get(name, 0) / 1024),
            "tree_mib": round(tree_peak.get(name, 0) / 1024),
            "servers_mib": round(server_peak.get(name, 0) / 1024),
        }
        rows.append(row)
        seconds = "" if row["seconds"] is None else f"{row['seconds']:.0f}"
        servers = row["servers_mib"] or ""
        print(f"| {name} | {seconds} | {row['kernel_mib']} | {row['tree_mib']} | {servers} |")
    if args.json:
        args.json.write_text(json.dumps({"run": args.run, "wall_s": wall, "notebooks": rows}, indent=1))
    return child.returncode


if __name__ == "__main__":
    sys.exit(main())
