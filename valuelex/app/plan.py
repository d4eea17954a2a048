"""What a live run would pay for, before anything is paid: every instrument's calls, tokens and cost.

A run makes paid calls in three places: the elicitation (notebook 01), the projective test's
completions and its LLM judge (notebook 06). ``plan_run`` counts, for each, the calls not yet in
the run's store (its own store and, under it, the committed dataset it reads) and their worst-case
cost at the cards' list prices. The judge's calls depend on the completions it scores: on the
completions already stored the judge's plan is exact (those it judged before are in its store); on
the others it is an upper bound (one call per completion and sub-dimension its stem targets).

Before money, the plan also says what the run needs that is not there (``RunPlan.needs``): a
local model (the judge included) that is not installed, with the one command that installs it and,
for the judge, the scorer that needs none; an API key that is not set. ``valuelex run`` stops on
them before any call (:func:`require_ready`).
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass, field

import pandas as pd

from ..core import paths
from ..core.display import Report
from ..core.errors import UserError
from ..llm.cards import MissingKeyError, ModelCard, load_model_cards, load_panel
from ..llm.runner import LLMRunner, Plan
from ..llm.runstore import open_store
from ..settings import RunSettings


@dataclass(repr=False)  # a console shows the report, not the dataclass
class RunPlan(Report):
    """The paid calls of a run, instrument by instrument."""

    run: str
    parts: list[tuple[str, Plan, str]]  # (instrument, plan, note)
    title: str = "Plan: the calls a live run would make (nothing has been called)"
    needs: list[str] = field(default_factory=list)  # what must be installed or set before the first call

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
        out: list[tuple[str, object]] = [(f"run {self.run!r}", summary), ("Per instrument and model", self.table())]
        if self.needs:
            out.append(("Before any call (a live run stops until these are done)", "\n".join(self.needs)))
        return out

    def metrics(self) -> dict[str, float]:
        return {"to_call": self.to_call, "cost_usd": self.cost_usd}


def run_cards(run: RunSettings) -> dict[str, ModelCard]:
    """Every model card a run would call, by name: both panels' models (named in configs/models/ or by a
    card path in the panel) and the judge."""
    cards: dict[str, ModelCard] = {}
    for panel in (run.elicitation.panel, run.projective.panel):
        cards.update(load_panel(panel).cards)
    if run.projective.judged_by and run.projective.judge not in cards:
        cards[run.projective.judge] = load_model_cards()[run.projective.judge]
    return cards


def _store(run: RunSettings, study: str):
    """The run's store of one study, as its notebooks will read it: its own over its read-only base."""
    from ..stages import Folders

    folders = Folders.of(run)
    return open_store(folders.raw / study, folders.base / study if folders.base is not None else None)


def _runner(cards: dict[str, ModelCard], study: str, run: RunSettings) -> LLMRunner:
    return LLMRunner(cards, _store(run, study), mode="live", progress=False)


def plan_run(run: RunSettings) -> RunPlan:
    """The plan of every paid call of ``run`` (calls nothing)."""
    from .. import projective
    from ..stages import Run, elicitation

    parts: list[tuple[str, Plan, str]] = []
    asked = elicitation.requests(Run.of(run))  # notebook 01's requests, as its stage builds them
    parts.append(("elicitation", _runner(asked.panel.cards, elicitation.STUDY, run).plan(asked.requests), ""))

    p = run.projective
    ppanel = load_panel(p.panel)
    instrument = projective.load_instrument().select(p.stem_ids)
    completions = projective.build_requests(
        ppanel, instrument, max_models=p.max_models, respondents_per_model=p.respondents_per_model
    )
    completion_runner = _runner(ppanel.cards, projective.STUDY, run)
    completion_plan = completion_runner.plan(completions)
    parts.append(("projective completions", completion_plan, ""))

    if p.judged_by:
        # the judge's calls on the completions already stored are known exactly (and those already judged
        # are stored too); on the others, one call per completion and target is an upper bound
        completion_runner.mode = "replay"
        missing = {r.key(ppanel.cards[r.model]) for r in completion_runner.misses(completions)}
        stored = [r for r in completions if r.key(ppanel.cards[r.model]) not in missing]
        unstored = [r for r in completions if r.key(ppanel.cards[r.model]) in missing]
        records = completion_runner.run(stored) if stored else []
    for kind in p.judged_by:
        judge = _judge(kind, p.judge, run)
        name = f"judge ({kind} scorer)"
        exact = None
        if stored:
            cases = projective.scoring_cases(projective.completions_table(ppanel, instrument, stored, records))
            exact = judge.runner.plan(judge.requests(cases))
        if not unstored:
            parts.append((name, exact, ""))
            continue
        bound = _judge_upper_bound(judge, instrument, unstored)
        note = f"upper bound: {len(unstored):,} completions not stored yet"
        parts.append((name, _sum(exact, bound) if exact is not None else bound, note))
    plan = RunPlan(run.name, parts)
    plan.needs = needs(run, plan)
    return plan


def _judge(kind: str, model: str, run: RunSettings):
    """The judge a scorer calls (the log-probability judge for stance and logprob, the JSON judge otherwise)."""
    from .. import projective

    cards = {model: run_cards(run)[model]}
    store = _store(run, projective.JUDGE_STUDY)
    if kind == "judge":
        return projective.JudgeScorer(model, mode="live", cards=cards, store=store, progress=False)
    return projective.LogprobJudge(model, mode="live", cards=cards, store=store, progress=False)


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


def _sum(a: Plan, b: Plan) -> Plan:
    """Two plans of one instrument as one (requests, calls, tokens, cost and the held-back counts added)."""
    per_model = {m: dict(v) for m, v in a.per_model.items()}
    for model, v in b.per_model.items():
        m = per_model.setdefault(model, {"to_call": 0, "cost_usd": 0.0})
        m["to_call"] += v["to_call"]
        m["cost_usd"] += v["cost_usd"]
    return Plan(
        a.requested + b.requested, a.stored + b.stored, a.to_call + b.to_call,
        a.est_prompt_tokens + b.est_prompt_tokens, a.est_completion_tokens + b.est_completion_tokens,
        a.est_cost_usd + b.est_cost_usd, per_model, a.damaged + b.damaged, a.lost + b.lost, a.given_up + b.given_up,
    )  # fmt: skip


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


# ------------------------------------------------------------------------------------------
# Preflight before money
# ------------------------------------------------------------------------------------------
class NotReady(UserError):
    """A live run needs something that is not installed or set; nothing has been called."""


def calling(run: RunSettings, plan: RunPlan | None = None) -> dict[str, list[str]]:
    """Model -> the instruments that would call it in ``run`` (empty for a replay run: it calls nothing)."""
    if run.mode != "live":
        return {}
    plan = plan or plan_run(run)
    out: dict[str, list[str]] = {}
    for instrument, part, _ in plan.parts:
        for model, m in part.per_model.items():
            if m["to_call"]:
                out.setdefault(model, []).append(instrument)
    return out


def needs(run: RunSettings, plan: RunPlan) -> list[str]:
    """What a live run needs before its first call and does not have, one line each (nothing for replay)."""
    used = calling(run, plan)
    cards = run_cards(run)
    missing_local: list[str] = []
    lines: list[str] = []
    unset: dict[str, list[str]] = {}  # key variable -> the models that need it
    for model, instruments in used.items():
        card = cards[model]
        if card.provider == "llama_cpp":
            from ..llm.local import gguf_path

            if not gguf_path(card, paths.MODELS_DIR).exists():
                missing_local.append(model)
                what = "the projective judge" if any(i.startswith("judge") for i in instruments) else "a local model"
                lines.append(f"{model} ({what}, for {', '.join(instruments)}): not installed in {paths.MODELS_DIR}")
        elif card.api_key_env:
            try:
                card.api_key()
            except MissingKeyError:
                unset.setdefault(card.api_key_env, []).append(model)
    local = [m for m in used if cards[m].provider == "llama_cpp"]
    if local and importlib.util.find_spec("llama_cpp") is None:
        lines.append(f"llama.cpp's server (llama-cpp-python), which serves {', '.join(local)}, is not installed")
        missing_local = list(dict.fromkeys([*missing_local, *local]))
    if missing_local:
        lines.append(f"install: ./run_all.sh --setup-only --local-models {_shell_words(missing_local)}")
    if run.projective.judge in missing_local:
        lines.append(
            "or score without the judge: the embedding scorer calls no LLM (in the run file: projective: "
            "{scorer: embedding, second_scorer: null}; or --set projective.scorer=embedding "
            "--set projective.second_scorer=null)"
        )
    lines += [f"key not set: export {variable}=... (for {', '.join(models)})" for variable, models in unset.items()]
    return lines


def _shell_words(names: list[str]) -> str:
    return names[0] if len(names) == 1 else '"' + " ".join(names) + '"'


def require_ready(plan: RunPlan) -> None:
    """Raise :class:`NotReady` (one line) when the plan lists something the live run needs first."""
    if plan.needs and plan.to_call:
        raise NotReady(f"run {plan.run!r} cannot start, nothing was called: " + "; ".join(plan.needs))
