"""``python -m valuelex.projective``: make (or check) the projective test's LLM calls."""

from __future__ import annotations

from .instrument import DEFAULT_JUDGE, DEFAULT_PANEL, administer, scoring_cases
from .judge import JudgeScorer, judge_sample


def main(argv: list[str] | None = None) -> int:
    """``python -m valuelex.projective --panel projective_local --mode live --judge``: make (or check) the calls."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--panel", default=DEFAULT_PANEL)
    parser.add_argument("--mode", default="replay", choices=["replay", "live"])
    parser.add_argument("--respondents-per-model", type=int, default=None)
    parser.add_argument("--judge", action="store_true", help="also run the judge on its panel sample")
    parser.add_argument("--judge-model", default=DEFAULT_JUDGE)
    parser.add_argument("--judge-respondents", type=int, default=1)
    args = parser.parse_args(argv)
    completions, runner = administer(args.panel, mode=args.mode, respondents_per_model=args.respondents_per_model)
    print(f"{len(completions)} completions, {int(completions['usable'].sum())} usable; report: {runner.report}")
    if args.judge:
        sample = judge_sample(scoring_cases(completions), args.judge_respondents)
        judge = JudgeScorer(args.judge_model, mode=args.mode)
        judged = judge.score(sample)
        print(
            f"judge: {len(judged)} cases, status {judged['status'].value_counts().to_dict()}; report: {judge.runner.report}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
