"""``python -m valuelex.projective``: make (or check) the projective test's LLM calls.

python -m valuelex.projective --mode live                 # the panel's completions
python -m valuelex.projective --mode live --score stance  # and the stance scorer's judge calls
"""

from __future__ import annotations

import argparse

from ..core import paths
from ..llm.store import ResponseStore
from .instrument import DEFAULT_JUDGE, DEFAULT_PANEL, JUDGE_STUDY, STUDY, administer, scoring_cases
from .scorers import SCORERS, make_scorer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--panel", default=DEFAULT_PANEL)
    parser.add_argument("--mode", default="replay", choices=["replay", "live"])
    parser.add_argument("--respondents-per-model", type=int, default=None)
    parser.add_argument("--score", default=None, choices=[s for s in SCORERS if s != "embedding"],
                        help="also score every case with this judge-based scorer (its calls go to data/raw/judge)")  # fmt: skip
    parser.add_argument("--judge-model", default=DEFAULT_JUDGE)
    args = parser.parse_args(argv)
    completions, runner = administer(
        args.panel,
        mode=args.mode,
        respondents_per_model=args.respondents_per_model,
        store=ResponseStore(paths.DATASET / STUDY),
    )
    print(f"{len(completions)} completions, {int(completions['usable'].sum())} usable; report: {runner.report}")
    if args.score:
        scorer = make_scorer(
            args.score, judge_model=args.judge_model, mode=args.mode, store=ResponseStore(paths.DATASET / JUDGE_STUDY)
        )
        scored = scorer.score(scoring_cases(completions))
        print(f"{args.score}: {len(scored)} cases, status {scored['status'].value_counts().to_dict()}")
        print(f"report: {scorer.runner.report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
