"""Generative elicitation: ask every respondent (model x decoding setting) the value prompts.

The prompts are data (``configs/prompts/elicitation.yaml``); the respondents come from a
panel (``configs/panels/*.yaml``). Answers go through the LLM layer into the response store
``data/raw/elicitation/``; the default mode replays them. Parsing answers into value
descriptors lives in ``valuelex.parse`` and always works on the stored raw text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .core import paths
from .core.errors import ConfigError, run_main
from .core.schema import check_fields, read_yaml
from .llm.cards import Panel, load_panel
from .llm.limits import Limits
from .llm.request import Request, panel_requests, respondent_columns
from .llm.runner import LLMRunner, Plan
from .llm.store import ResponseStore

STUDY = "elicitation"
PROMPT_SOURCES = ("paper", "ours")


@dataclass(frozen=True)
class Prompt:
    id: str
    text: str
    source: str  # "paper" (verbatim from the paper) or "ours"


@dataclass(frozen=True)
class PromptSet:
    version: str
    system: str | None
    prompts: tuple[Prompt, ...]


_PROMPTS_FIELDS = {"version": ((str, int), True), "system": ((str, type(None)), False), "prompts": (list, True)}
_PROMPT_FIELDS = {"id": (str, True), "text": (str, True), "source": (str, True)}


def load_prompts(path: str | Path = paths.PROMPTS / "elicitation.yaml") -> PromptSet:
    """Read and check the elicitation instrument: unknown fields, empty or repeated prompts are errors."""
    path = Path(path)
    data = read_yaml(path)
    check_fields(path, data, _PROMPTS_FIELDS)
    system = data.get("system")
    if system is not None and not system.strip():
        raise ConfigError(f"{path}: field 'system' is empty; leave it out (or null) for no system prompt")
    if not data["prompts"]:
        raise ConfigError(f"{path}: field 'prompts' must list at least one prompt")
    prompts = []
    for i, p in enumerate(data["prompts"]):
        if not isinstance(p, dict):
            raise ConfigError(f"{path}: field 'prompts[{i}]' must be a mapping with id, text and source")
        check_fields(path, p, _PROMPT_FIELDS, f"prompts[{i}].")
        for key in ("id", "text"):
            if not p[key].strip():
                raise ConfigError(f"{path}: field 'prompts[{i}].{key}' is empty")
        if p["source"] not in PROMPT_SOURCES:
            raise ConfigError(f"{path}: field 'prompts[{i}].source' must be paper or ours, got {p['source']!r}")
        prompts.append(Prompt(p["id"], p["text"], p["source"]))
    for name in ("id", "text"):
        values = [getattr(p, name) for p in prompts]
        repeated = next((v for v in values if values.count(v) > 1), None)
        if repeated is not None:
            raise ConfigError(f"{path}: field 'prompts' has the {name} {repeated!r} twice")
    return PromptSet(str(data["version"]), data.get("system"), tuple(prompts))


def check_parameters(use_system_prompt: Any, max_models: Any) -> None:
    """The notebook's parameters have the types they need (a string "false" is not False)."""
    if not isinstance(use_system_prompt, bool):
        raise ConfigError(f"parameter use_system_prompt must be True or False, got {use_system_prompt!r}")
    if max_models is not None and (isinstance(max_models, bool) or not isinstance(max_models, int) or max_models < 1):
        raise ConfigError(f"parameter max_models must be a positive integer or None, got {max_models!r}")


def build_requests(
    panel: Panel, prompts: PromptSet, *, use_system_prompt: bool = True, max_models: int | None = None
) -> list[Request]:
    """One request per respondent x prompt x sample, in a stable order."""
    check_parameters(use_system_prompt, max_models)
    system = [("system", prompts.system)] if use_system_prompt and prompts.system else []
    items = [(p.id, [*system, ("user", p.text)]) for p in prompts.prompts]
    return panel_requests(panel, items, prompts.version, models=panel.models[:max_models] if max_models else None)


def runner(panel: Panel, mode: str, store: ResponseStore, **kw: Any) -> LLMRunner:
    """The runner of the elicitation study over ``store`` (a run's ``run.store(elicit.STUDY)``)."""
    return LLMRunner(panel.cards, store, mode=mode, limits=kw.pop("limits", Limits()), **kw)


def responses_table(panel: Panel, requests: list[Request], records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per request: who was asked what, and the raw answer as stored."""
    rows = []
    for req, rec in zip(requests, records, strict=True):
        card = panel.cards[req.model]
        rows.append(
            {
                **respondent_columns(req, card),
                "prompt_id": req.prompt_id,
                "sample": req.sample,
                "status": rec["status"],
                "usable": bool(rec.get("usable", False)),
                "finish_reason": rec.get("finish_reason"),
                "completion_tokens": (rec.get("usage") or {}).get("completion_tokens", 0),
                "text": rec.get("text"),
                "error": (rec.get("error") or {}).get("type"),  # why a failed call failed (None when it did not)
                "key": rec["key"],
            }
        )
    return pd.DataFrame(rows)


def elicit(
    panel: str | Path | Panel = "local",
    *,
    mode: str = "replay",
    use_system_prompt: bool = True,
    max_models: int | None = None,
    store: ResponseStore,
    limits: Limits | None = None,
    progress: bool = True,
) -> tuple[pd.DataFrame, Plan, LLMRunner]:
    """Ask (or replay) the whole panel; returns the responses, the dry-run plan, and the runner."""
    if not isinstance(panel, Panel):
        panel = load_panel(panel)
    prompts = load_prompts()
    requests = build_requests(panel, prompts, use_system_prompt=use_system_prompt, max_models=max_models)
    run = runner(panel, mode, store, limits=limits or Limits(), progress=progress)
    plan = run.plan(requests)
    records = run.run(requests)
    return responses_table(panel, requests, records), plan, run


def save_responses(responses: pd.DataFrame, descriptors: pd.DataFrame, folder: Path) -> dict[str, Path]:
    """Write the elicitation tables to ``folder`` (a run's ``data/processed``): responses, respondents, raw descriptors."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = {
        "responses": folder / "responses.csv",
        "respondents": folder / "respondents.csv",
        "descriptors_raw": folder / "descriptors_raw.csv",
    }
    responses.drop(columns=["key"], errors="ignore").to_csv(out["responses"], index=False, lineterminator="\n")
    cols = ["respondent", "model", "family", "params_b", "training_stage", "temperature", "top_p", "seed"]
    responses[cols].drop_duplicates("respondent").to_csv(out["respondents"], index=False, lineterminator="\n")
    descriptors.to_csv(out["descriptors_raw"], index=False, lineterminator="\n")
    return out


# figures -----------------------------------------------------------------------------------
PARSE_STATUS_ORDER = ["ok", "refusal", "unparseable", "empty", "error"]


def parse_status_table(responses: pd.DataFrame) -> pd.DataFrame:
    """Responses per model by parse status (counts), with the share that gave descriptors."""
    table = pd.crosstab(responses["model"], responses["parse_status"]).reindex(columns=PARSE_STATUS_ORDER, fill_value=0)
    table["responses"] = table.sum(axis=1)
    table["ok_share"] = (table["ok"] / table["responses"]).round(3)
    table["descriptors_per_ok_response"] = (
        responses[responses["parse_status"] == "ok"].groupby("model")["n_descriptors"].mean().round(2)
    )
    table["refusal_phrases"] = responses.groupby("model")["refusal_phrase"].sum()
    return table.reset_index()


def plot_parse_status(responses: pd.DataFrame):
    """Stacked bars: share of each model's answers by parse status."""
    import matplotlib.pyplot as plt

    from .core.io import apply_style

    apply_style()
    table = pd.crosstab(responses["model"], responses["parse_status"], normalize="index")
    table = table.reindex(columns=[c for c in PARSE_STATUS_ORDER if c in table.columns])
    answers = responses["model"].value_counts()
    table.index = [f"{model} ({answers[model]:,} answers)" for model in table.index]
    colours = {"ok": "#3f9b62", "refusal": "#d9822b", "unparseable": "#c44e52", "empty": "#9e9e9e", "error": "#333333"}
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(table) + 1.5))
    table.plot.barh(stacked=True, ax=ax, color=[colours[c] for c in table.columns], width=0.7)
    ax.set_xlabel("share of answers")
    ax.set_ylabel("")
    ax.set_xlim(0, 1)
    ax.set_title("How each model's answers parsed")
    ax.legend(title="parse status", bbox_to_anchor=(1.01, 1), loc="upper left", frameon=False)
    return fig


def usage_table(run: LLMRunner) -> pd.DataFrame:
    """Attempts, errors, tokens and cost per model over everything stored (failed attempts included)."""
    rows = []
    for model, c in sorted(run.store.usage_by_model().items()):
        card = run.cards.get(model)
        cost = card.cost(c["prompt_tokens"], c["completion_tokens"]) if card else float("nan")
        rows.append(
            {
                "model": model,
                **{k: c[k] for k in ("attempts", "final", "errors", "prompt_tokens", "completion_tokens")},
                "cost_usd": cost,
            }
        )
    return pd.DataFrame(rows)


def example_answers(responses: pd.DataFrame, per_model: int = 3, seed: int = 0) -> pd.DataFrame:
    """A few raw answers per model next to the descriptors the parser took from them."""
    from .parse import parse_answer

    n = min(per_model, int(responses.groupby("model").size().min()))
    sample = responses.groupby("model").sample(n=n, random_state=seed)
    sample = sample.assign(
        descriptors=[
            parse_answer(t, truncated=f == "length").descriptors
            for t, f in zip(sample["text"], sample["finish_reason"], strict=True)
        ]
    )
    return sample[["model", "prompt_id", "parse_status", "text", "descriptors"]].reset_index(drop=True)


def main(argv: list[str] | None = None) -> int:
    """``python -m valuelex.elicit --panel local --mode live``: make (or check) the elicitation calls."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--panel", default="local")
    parser.add_argument("--mode", default="replay", choices=["replay", "live", "plan"])
    parser.add_argument("--no-system-prompt", action="store_true")
    parser.add_argument("--prompts", type=Path, default=paths.PROMPTS / "elicitation.yaml", help="the prompts file")
    parser.add_argument("--store", type=Path, help="the response store (default: data/raw/elicitation)")
    args = parser.parse_args(argv)
    panel = load_panel(args.panel)
    prompts = load_prompts(args.prompts)
    requests = build_requests(panel, prompts, use_system_prompt=not args.no_system_prompt)
    run = runner(
        panel, "live" if args.mode == "plan" else args.mode, ResponseStore(args.store or paths.DATASET / STUDY)
    )
    print(run.plan(requests), flush=True)
    if args.mode == "plan":
        return 0
    records = run.run(requests)
    table = responses_table(panel, requests, records)
    print(f"{len(table)} responses from {table['respondent'].nunique()} respondents; report: {run.report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
