"""Stage 01, generative elicitation (the paper's steps 1-2): every respondent (a model at one decoding
setting) asked the value prompts, the answers parsed into value descriptors. Notebook
``01_elicitation`` narrates ``stages.elicitation.plan(run)``, then ``stages.elicitation.run(run, plan)``;
the settings are the run's ``elicitation`` section and its ``mode``.

This module is the one place that builds the elicitation's request set from a run (:func:`requests`):
the notebook's plan and ``valuelex plan`` (``app/plan.py``) both count it. :func:`plan` calls nothing:
it says, before any call, how many requests the run makes, how many are stored, and what the missing
ones would cost. :func:`run` then asks (``mode: live``, only what is not stored) or replays the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from .. import elicit, parse
from ..core.display import Report
from ..llm.cards import Panel, load_panel
from ..llm.request import Request
from ..llm.runner import LLMRunner, Plan
from .base import Figures, Output, Run, Stage

#: The response store the elicitation's answers are kept in (``data/raw/elicitation``; ``run.store(STUDY)``).
STUDY = elicit.STUDY

STAGE = Stage(
    number="01",
    name="elicitation",
    notebook="01_elicitation",
    inputs=(),  # reads no processed file: its input is the response store (data/raw/elicitation)
    outputs=(
        Output("elicitation_parse_status", "table"),
        Output("elicitation_parse_status", "figure"),
        Output("elicitation_usage", "table"),
        Output("responses", "data"),
        Output("respondents", "data"),
        Output("descriptors_raw", "data"),
    ),
)


@dataclass(frozen=True)
class Requests:
    """The elicitation's request set of a run: one request per respondent x prompt x sample, in a stable order."""

    panel: Panel
    prompts: elicit.PromptSet
    use_system_prompt: bool
    requests: list[Request]


def requests(run: Run) -> Requests:
    """The requests a run's elicitation makes (its panel, the prompts, ``use_system_prompt``, ``max_models``)."""
    settings = run.settings.elicitation
    panel = load_panel(settings.panel)
    prompts = elicit.load_prompts()
    asked = elicit.build_requests(
        panel, prompts, use_system_prompt=settings.use_system_prompt, max_models=settings.max_models
    )
    return Requests(panel, prompts, settings.use_system_prompt, asked)


@dataclass(repr=False)
class ElicitationPlan(Report):
    """What the elicitation will ask, before any call: the panel (models x decoding settings = respondents),
    the prompts, and the dry run of the calls (``calls``: stored, to call, tokens and cost at list price)."""

    asked: Requests
    runner: LLMRunner  # the run's runner over the run's store: :func:`run` asks through it
    calls: Plan

    title = "Elicitation: the plan (nothing has been called)"

    @property
    def panel(self) -> Panel:
        return self.asked.panel

    @property
    def requests(self) -> list[Request]:
        return self.asked.requests

    @property
    def models(self) -> pd.DataFrame:
        """The panel's models: family, size, training stage, provider."""
        return pd.DataFrame(
            [
                {
                    "model": c.name,
                    "family": c.family,
                    "params_b": c.params_b,
                    "training_stage": c.training_stage,
                    "provider": c.provider,
                }
                for c in self.panel.cards.values()
            ]
        )

    def panel_note(self) -> str:
        panel = self.panel
        return (
            f"{len(panel.respondents())} respondents = {len(panel.models)} models x {len(panel.temperature)} temperatures "
            f"x {len(panel.top_p)} top_p x {len(panel.seed)} seeds; {panel.samples} sample(s) per prompt"
        )

    @property
    def prompts(self) -> pd.DataFrame:
        """The instrument: each prompt's id, text and source (the paper's wording or ours)."""
        return pd.DataFrame([vars(p) for p in self.asked.prompts.prompts])

    def system_note(self) -> str:
        system = self.asked.prompts.system
        return f"system prompt: {repr(system) if self.asked.use_system_prompt else 'none'}"

    def sections(self) -> list[tuple[str, Any]]:
        return [("", self.panel_note()), ("", self.system_note()), ("Calls", str(self.calls))]


def plan(run: Run) -> ElicitationPlan:
    """The run's requests and, before any call, how many are stored and what the others would cost."""
    asked = requests(run)
    runner = elicit.runner(asked.panel, run.settings.mode, run.store(STUDY))
    return ElicitationPlan(asked, runner, runner.plan(asked.requests))


@dataclass(repr=False)
class ElicitationResult(Report):
    """What stage 01 made: the answers (``responses``, one row per request, with their parse status), the
    descriptors parsed from them, the parse-status table and figure, example answers, the usage of every
    stored attempt, and what the runner did (``report``: store hits, calls made)."""

    plan: ElicitationPlan
    responses: pd.DataFrame  # data/processed/responses.csv (with each request's store key)
    descriptors: pd.DataFrame  # data/processed/descriptors_raw.csv
    status: pd.DataFrame  # figures/elicitation_parse_status.csv
    examples: pd.DataFrame  # a few raw answers per model next to their descriptors
    usage: pd.DataFrame  # figures/elicitation_usage.csv
    figures: Figures  # parse_status

    title = "Generative elicitation"

    @property
    def report(self):
        """What the runner did: requests, store hits, calls made, failures (a report)."""
        return self.plan.runner.report

    def answers_note(self) -> str:
        return f"{len(self.responses)} answers from {self.responses['respondent'].nunique()} respondents"

    def sections(self) -> list[tuple[str, Any]]:
        return [("", self.answers_note()), ("Parse status by model", self.status), ("Usage per model", self.usage)]

    def metrics(self) -> dict[str, Any]:
        responses, panel = self.responses, self.plan.panel
        status = responses["parse_status"]
        return {
            "respondents": int(responses["respondent"].nunique()),
            "models": int(responses["model"].nunique()),
            "responses": len(responses),
            "descriptors": len(self.descriptors),
            "parse_ok_share": round(float((status == "ok").mean()), 4),
            "unparseable": int((status == "unparseable").sum()),
            "store_hits": self.report.hits,
            "calls_made": self.report.calls,
            "panel": panel.name,
            "prompts": len(self.plan.asked.prompts.prompts),
            "parse_status": status.value_counts().to_dict(),
            "unparseable_by_model": responses.loc[status == "unparseable", "model"].value_counts().to_dict(),
            "training_stages": {card.name: card.training_stage for card in panel.cards.values()},
        }


def run(run: Run, planned: ElicitationPlan | None = None) -> ElicitationResult:
    """Ask (or replay) the planned requests, parse the answers, save the declared outputs.

    ``planned``: the plan the reader was shown (:func:`plan`); its runner asks, over the store it read.
    None: planned here.
    """
    planned = planned if planned is not None else plan(run)
    settings, runner, asked = run.settings.elicitation, planned.runner, planned.asked
    records = runner.run(asked.requests)
    responses = elicit.responses_table(asked.panel, asked.requests, records)

    responses, descriptors = parse.parse_responses(responses)
    status = elicit.parse_status_table(responses)
    run.save_table(status, "elicitation_parse_status")
    figures = Figures(parse_status=elicit.plot_parse_status(responses))
    run.save_figure(figures["parse_status"], "elicitation_parse_status")
    examples = elicit.example_answers(responses, per_model=settings.examples_per_model)
    usage = elicit.usage_table(runner)
    run.save_table(usage, "elicitation_usage")
    elicit.save_responses(responses, descriptors, run.folders.processed)
    for fig in figures.values():  # shown where the notebook names them
        plt.close(fig)
    return ElicitationResult(planned, responses, descriptors, status, examples, usage, figures)
