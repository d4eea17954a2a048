"""What a live run would pay for, before anything is paid: every instrument's calls, tokens and cost.

A run makes paid calls in three places: the elicitation (notebook 01), the projective test's
completions and its LLM judge (notebook 06). ``plan_run`` counts, for each, the calls not yet in
the store and their worst-case cost at the cards' list prices. The judge's calls depend on the
completions it scores: when those are stored the judge's plan is exact, otherwise it is an upper
bound (one call per sampled completion).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import pandas as pd

from . import elicit
from .config import ModelCard, load_model_cards, load_panel
from .display import Report
from .llm import LLMRunner, Plan
from .settings import RunSettings
from .store import ResponseStore


@dataclass
class RunPlan(Report):
    """The paid calls of a run, instrument by instrument."""

    run: str
    parts: list[tuple[str, Plan, str]]  # (instrument, plan, note)
    title: str = "Plan: the calls a live run would make (nothing has been called)"

    @property
    def to_call(self) -> int:
        return sum(p.to_call for _, p, _ in self.parts)

    @property
    def cost_usd(self) -> float:
        return sum(p.est_cost_usd for _, p, _ in self.parts)

    def table(self) -> pd.DataFrame:
        rows = []
        for name, plan, note in self.parts:
            for model, m in sorted(plan.per_model.items()):
                rows.append({"instrument": name, "model": model, "calls": int(m["to_call"]), "cost_usd": m["cost_usd"]})
            if not plan.per_model:
                rows.append({"instrument": name, "model": "(none)", "calls": 0, "cost_usd": 0.0})
            if note:
                rows[-1]["note"] = note
        return pd.DataFrame(rows).fillna({"note": ""})

    def sections(self) -> list[tuple[str, object]]:
        summary = {
            "requests in the run": sum(p.requested for _, p, _ in self.parts),
            "already stored": sum(p.stored for _, p, _ in self.parts),
            "to call": self.to_call,
            "estimated cost at list price (USD)": round(self.cost_usd, 2),
            # requests a live run holds back (each may have been paid already); asked only when told
            "not asked: damaged records": sum(p.damaged for _, p, _ in self.parts),
            "not asked: lost in flight": sum(p.lost for _, p, _ in self.parts),
            "stored as given up": sum(p.given_up for _, p, _ in self.parts),
        }
        if any(p.damaged or p.lost or p.given_up for _, p, _ in self.parts):
            summary["asked again only with"] = "--retry-damaged, --retry-lost, --retry-failed"
        return [(f"run {self.run!r}", summary), ("Per instrument and model", self.table())]

    def metrics(self) -> dict[str, float]:
        return {"to_call": self.to_call, "cost_usd": self.cost_usd}


def cards_of_run(run: RunSettings) -> list[ModelCard]:
    """Every model card a run would call: both panels' models and the judge."""
    cards = load_model_cards()
    names = list(load_panel(run.elicitation.panel).models)
    names += [m for m in load_panel(run.projective.panel).models if m not in names]
    if run.projective.judged_by and run.projective.judge not in names:
        names.append(run.projective.judge)
    return [cards[n] for n in names]


def _runner(cards: dict[str, ModelCard], study: str, run: RunSettings) -> LLMRunner:
    return LLMRunner(cards, ResponseStore(run.raw_dir / study), mode="live", progress=False)


def plan_run(run: RunSettings) -> RunPlan:
    """The plan of every paid call of ``run`` (calls nothing)."""
    from . import projective

    parts: list[tuple[str, Plan, str]] = []
    panel = load_panel(run.elicitation.panel)
    requests = elicit.build_requests(
        panel, elicit.load_prompts(), use_system_prompt=run.elicitation.use_system_prompt,
        max_models=run.elicitation.max_models,
    )  # fmt: skip
    parts.append(("elicitation", _runner(panel.cards, elicit.STUDY, run).plan(requests), ""))

    p = run.projective
    ppanel = load_panel(p.panel)
    instrument = projective.load_instrument().select(p.stem_ids)
    completions = projective.build_requests(
        ppanel, instrument, max_models=p.max_models, respondents_per_model=p.respondents_per_model
    )
    completion_runner = _runner(ppanel.cards, projective.STUDY, run)
    completion_plan = completion_runner.plan(completions)
    parts.append(("projective completions", completion_plan, ""))

    for kind in p.judged_by:
        judge = _judge(kind, p.judge, run)
        name = f"judge ({kind} scorer)"
        if completion_plan.to_call == 0:
            completion_runner.mode = "replay"
            records = completion_runner.run(completions)
            cases = projective.scoring_cases(projective.completions_table(ppanel, instrument, completions, records))
            parts.append((name, judge.runner.plan(judge.requests(cases)), ""))
        else:
            parts.append(
                (name, _judge_upper_bound(judge, instrument, completions), "upper bound: completions not stored yet")
            )
    return RunPlan(run.name, parts)


def _judge(kind: str, model: str, run: RunSettings):
    """The judge a scorer calls (the log-probability judge for stance and logprob, the JSON judge otherwise)."""
    from . import projective

    cards = {model: load_model_cards()[model]}
    store = run.raw_dir / projective.JUDGE_STUDY
    if kind == "judge":
        return projective.JudgeScorer(model, mode="live", cards=cards, store_root=store, progress=False)
    return projective.LogprobJudge(model, mode="live", cards=cards, store_root=store, progress=False)


def _judge_upper_bound(judge, instrument, completions: list) -> Plan:
    """One judge call per completion and sub-dimension its stem targets (every completion assumed usable)."""
    targets = {s.id: len(s.targets) for s in instrument.stems}
    n = sum(targets[r.prompt_id] for r in completions)
    card = judge.cards[judge.judge_model]
    stem = max(instrument.stems, key=lambda s: len(s.text))
    sample = judge.requests(
        pd.DataFrame({"stem": [stem.text], "completion": ["x" * 200], "subdimension": [stem.targets[0]]})
    )[0]
    prompt = sum(len(c) for _, c in sample.messages) // 3
    cost = n * card.cost(prompt, sample.max_tokens)
    per_model = {judge.judge_model: {"to_call": n, "cost_usd": cost}} if n else {}
    return Plan(n, 0, n, n * prompt, n * sample.max_tokens, cost, per_model)


def confirm_live(plan: RunPlan, assume_yes: bool = False) -> bool:
    """Whether to go on with a live run: nothing to pay, ``--yes``, or a yes at the terminal."""
    if plan.to_call == 0 or assume_yes:
        return True
    if not sys.stdin.isatty():
        print(
            f"valuelex: a live run would make {plan.to_call} calls (~${plan.cost_usd:,.2f}); pass --yes to make them",
            file=sys.stderr,
        )
        return False
    answer = input(f"Make {plan.to_call} calls (~${plan.cost_usd:,.2f} at list price)? [y/N] ")
    return answer.strip().lower() in ("y", "yes")
