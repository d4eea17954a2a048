"""A small live run for the subprocess tests (kill-and-resume, secrets); not a test module.

``python tests/llm_live_run.py --cards DIR --messages FILE [--store DIR | --study NAME]``
asks every (model, message) pair of the JSON file through ``LLMRunner`` in live mode and
prints one line per final record; a mistake (a missing key, a store in use by another run) is one
line on stderr and exit code 2, a run in which every call failed exits with 1. ``--log-file`` turns on DEBUG logging (openai, httpx) into
that file, so a test can check that nothing secret reaches the logs.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from valuelex.core.errors import run_main
from valuelex.llm.cards import load_model_cards
from valuelex.llm.limits import Limits
from valuelex.llm.request import Request
from valuelex.llm.runner import LLMRunner
from valuelex.llm.store import ResponseStore
from valuelex.settings import load_run
from valuelex.stages import Folders


def build_requests(pairs: list[list[str]]) -> list[Request]:
    return [
        Request(model, (("user", text),), 0.7, 1.0, 32, seed=None, sample=0, prompt_id=f"p{i}", prompt_version="v1")
        for i, (model, text) in enumerate(pairs)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cards", required=True, type=Path)
    parser.add_argument("--messages", required=True, type=Path, help="JSON list of [model, message] pairs")
    parser.add_argument("--store", type=Path, help="store folder (default: the committed run's raw store/STUDY)")
    parser.add_argument("--study", default="live_test")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--log-file", type=Path)
    args = parser.parse_args(argv)
    if args.log_file:
        args.log_file.parent.mkdir(parents=True, exist_ok=True)
        logging.basicConfig(filename=args.log_file, level=logging.DEBUG, format="%(name)s %(levelname)s %(message)s")
    cards = load_model_cards(args.cards)
    store = ResponseStore(args.store or Folders.of(load_run()).raw / args.study)  # VALUELEX_RAW moves it
    limits = Limits(concurrency=args.concurrency, timeout_s=args.timeout, max_retries=3, backoff_base_s=0.05)
    runner = LLMRunner(cards, store, mode="live", limits=limits, progress=True)
    requests = build_requests(json.loads(args.messages.read_text(encoding="utf-8")))
    print(runner.plan(requests), flush=True)
    records = runner.run(requests)
    for rec in records:
        error = rec.get("error") or {}
        print(rec["key"], rec["status"], rec.get("usable"), error.get("type"), error.get("message"), rec.get("text"))
    print(f"report: {runner.report}", flush=True)
    print(f"store: {store.stats.records} records, issues: {[str(i) for i in store.stats.issues]}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
