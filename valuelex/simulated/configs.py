"""Model cards and panels of the simulated population, written as data.

``write_configs(population, cards_dir, panels_dir)`` writes one card per simulated model
(``provider: simulated`` naming the population file: the run starts the simulated server itself,
on a free port, as it starts llama.cpp for a local card; with ``port=N``, ``provider:
openai_compatible`` and ``base_url`` at a server you started, ``python -m valuelex.simulated serve
--port N``; no key either way) and,
for each panel shape of ``population.yaml`` (``paper``: 33 models x 16 settings = 528 respondents;
``small``), an elicitation panel ``sim_NAME.yaml`` and a projective panel
``sim_NAME_projective.yaml`` that name the cards by path. The repository's copies are in
``configs/simulated/models/`` and ``configs/panels/sim_*.yaml``
(``python -m valuelex.simulated configs`` rewrites them).
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from ..core import paths
from ..llm.cards import Respondent
from .population import Population

CARD_HEADER = """\
# A simulated model (valuelex.simulated): its answers come from the planted population of
# {population}, served on 127.0.0.1 by SimulatedServer
# ({served}).
# Written by `python -m valuelex.simulated configs`; do not edit.
"""
PANEL_HEADER = """\
# A panel of the simulated population (valuelex.simulated), written by
# `python -m valuelex.simulated configs` from the panel shape {shape!r} of configs/simulated/population.yaml;
# do not edit. {served}.
"""
STARTED = "started by the run on a free port, as llama.cpp is for a local card"


class _Dumper(yaml.SafeDumper):
    """Text with line breaks in double quotes (one line, escaped), lists of numbers on one line."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"' if "\n" in value else None)


def _list(dumper: yaml.SafeDumper, value: list) -> yaml.Node:
    flow = all(isinstance(v, (int, float)) for v in value)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flow)


_Dumper.add_representer(str, _str)
_Dumper.add_representer(list, _list)


def _yaml(data: dict) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=1000, allow_unicode=True)


def card(population: Population, name: str, port: int | None = None, population_ref: str | None = None) -> dict:
    """The model card of one simulated model, as a mapping.

    ``port`` None: ``provider: simulated`` with ``population: population_ref`` (the run starts the
    server); a port: ``provider: openai_compatible`` at a server already listening there.
    """
    m = population.models[name]
    out: dict = {"name": name}
    if port is None:
        out.update({"provider": "simulated", "population": population_ref or str(population.spec.path)})
    else:
        out.update({"provider": "openai_compatible", "base_url": f"http://127.0.0.1:{port}/v1"})
    out.update({"model": name, "api": m.api})
    if m.api == "completions":
        out["prompt_template"] = "{system}\n\nQuestion: {user}\nAnswer:"
        out["stop"] = ["\nQuestion:"]
    out.update(
        {
            "family": m.family,
            "params_b": m.params_b,
            "training_stage": m.stage,
            "price_per_mtok": {"input": 0.0, "output": 0.0},
            "checked": "simulated: answers come from configs/simulated/population.yaml, nothing to check",
            "notes": f"Simulated respondent model {m.index + 1} of {len(population.models)} (planted truth: "
            "python -m valuelex.simulated truth).",
            "send_seed": True,
            "limits": {"concurrency": 16},
        }
    )
    return out


def panel_respondents(population: Population, shape: str) -> list[Respondent]:
    """The respondents of one panel shape of ``population.yaml``, in panel order."""
    s = population.spec.panels[shape]
    models = population.model_names[: s.models]
    return [Respondent(m, t, p, seed) for m in models for t in s.temperature for p in s.top_p for seed in s.seed]


def write_configs(
    population: Population, cards_dir: str | Path, panels_dir: str | Path, port: int | None = None
) -> list[Path]:
    """Write every card and every panel; the paths written (``port``: see ``card``)."""
    cards_dir, panels_dir = Path(cards_dir), Path(panels_dir)
    cards_dir.mkdir(parents=True, exist_ok=True)
    panels_dir.mkdir(parents=True, exist_ok=True)
    written = []
    source = Path(population.spec.path).resolve()
    reference = os.path.relpath(source, cards_dir.resolve())
    shown = os.path.relpath(source, paths.ROOT) if source.is_relative_to(paths.ROOT) else str(source)
    served = STARTED if port is None else f"port {port}: python -m valuelex.simulated serve --port {port}"
    for name in population.model_names:
        path = cards_dir / f"{name}.yaml"
        header = CARD_HEADER.format(population=shown, served=served)
        path.write_text(header + _yaml(card(population, name, port, reference)), encoding="utf-8")
        written.append(path)
    relative = Path(os.path.relpath(cards_dir.resolve(), panels_dir.resolve()))
    for shape_name, shape in population.spec.panels.items():
        models = [str(relative / f"{m}.yaml") for m in population.model_names[: shape.models]]
        n = shape.models * shape.settings
        for kind, max_tokens in (("", shape.max_tokens), ("_projective", shape.projective_max_tokens)):
            name = f"sim_{shape_name}{kind}"
            what = "sentence completion" if kind else "elicitation"
            panel = {
                "name": name,
                "description": f"Simulated population, {what}: {shape.models} models x {shape.settings} settings = "
                f"{n} respondents.",
                "models": models,
                "decoding": {
                    "temperature": list(shape.temperature),
                    "top_p": list(shape.top_p),
                    "seed": list(shape.seed),
                    "samples": 1,
                },
                "max_tokens": max_tokens,
            }
            path = panels_dir / f"{name}.yaml"
            where = (
                "Its models' server is " + STARTED
                if port is None
                else f"Its models answer while the simulated server runs on port {port}"
            )
            header = PANEL_HEADER.format(shape=shape_name, served=where)
            path.write_text(header + _yaml(panel), encoding="utf-8")
            written.append(path)
    return written
