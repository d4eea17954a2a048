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
import yaml

from . import paths
from .config import ConfigError, Panel, load_panel
from .llm import Limits, LLMRunner, Plan, Request, panel_requests, respondent_columns
from .store import ResponseStore

STUDY = "elicitation"


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


def load_prompts(path: str | Path = paths.PROMPTS / "elicitation.yaml") -> PromptSet:
    """Read and check the elicitation instrument."""
    path = Path(path)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key in ("version", "prompts"):
        if key not in data:
            raise ConfigError(f"{path}: missing required field {key!r}")
    prompts = []
    for i, p in enumerate(data["prompts"]):
        for key in ("id", "text", "source"):
            if key not in p:
                raise ConfigError(f"{path}: missing required field 'prompts[{i}].{key}'")
        if p["source"] not in ("paper", "ours"):
            raise ConfigError(f"{path}: field 'prompts[{i}].source' must be paper or ours, got {p['source']!r}")
        prompts.append(Prompt(str(p["id"]), str(p["text"]), str(p["source"])))
    ids = [p.id for p in prompts]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{path}: field 'prompts' has duplicate ids")
    return PromptSet(str(data["version"]), data.get("system"), tuple(prompts))


def build_requests(
    panel: Panel, prompts: PromptSet, *, use_system_prompt: bool = True, max_models: int | None = None
) -> list[Request]:
    """One request per respondent x prompt x sample, in a stable order."""
    system = [("system", prompts.system)] if use_system_prompt and prompts.system else []
    items = [(p.id, [*system, ("user", p.text)]) for p in prompts.prompts]
    return panel_requests(panel, items, prompts.version, models=panel.models[:max_models] if max_models else None)


def runner(panel: Panel, mode: str = "replay", store_root: Path | None = None, **kw: Any) -> LLMRunner:
    store = ResponseStore(store_root or paths.raw_store(STUDY))
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
    store_root: Path | None = None,
    limits: Limits | None = None,
    progress: bool = True,
) -> tuple[pd.DataFrame, Plan, LLMRunner]:
    """Ask (or replay) the whole panel; returns the responses, the dry-run plan, and the runner."""
    if not isinstance(panel, Panel):
        panel = load_panel(panel)
    prompts = load_prompts()
    requests = build_requests(panel, prompts, use_system_prompt=use_system_prompt, max_models=max_models)
    run = runner(panel, mode, store_root, limits=limits or Limits(), progress=progress)
    plan = run.plan(requests)
    records = run.run(requests)
    return responses_table(panel, requests, records), plan, run


def save_responses(responses: pd.DataFrame, descriptors: pd.DataFrame, folder: Path | None = None) -> dict[str, Path]:
    """Write the elicitation tables to ``data/processed``: responses, respondents, raw descriptors."""
    folder = Path(folder or paths.PROCESSED)
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


def main(argv: list[str] | None = None) -> int:
    """``python -m valuelex.elicit --panel local --mode live``: make (or check) the elicitation calls."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--panel", default="local")
    parser.add_argument("--mode", default="replay", choices=["replay", "live", "plan"])
    parser.add_argument("--no-system-prompt", action="store_true")
    args = parser.parse_args(argv)
    panel = load_panel(args.panel)
    prompts = load_prompts()
    requests = build_requests(panel, prompts, use_system_prompt=not args.no_system_prompt)
    run = runner(panel, "live" if args.mode == "plan" else args.mode)
    print(run.plan(requests), flush=True)
    if args.mode == "plan":
        return 0
    records = run.run(requests)
    table = responses_table(panel, requests, records)
    print(f"{len(table)} responses from {table['respondent'].nunique()} respondents; report: {run.report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


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

    from .figures import apply_style

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
