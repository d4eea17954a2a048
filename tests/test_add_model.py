"""Adding a model end to end: a new card, only its calls are made, the analysis includes it."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import IN_CI, run_notebook
from valuelex import paths
from valuelex.config import load_model_card

pytestmark = pytest.mark.llama


def _needs_llama() -> None:
    card = load_model_card(paths.MODEL_CARDS / "smollm2-135m-instruct.yaml")
    problems = []
    try:
        import llama_cpp.server  # noqa: F401
    except ImportError:
        problems.append("llama-cpp-python[server] is not installed")
    if not (paths.MODELS_DIR / card.gguf.file).exists():
        problems.append(f"{paths.MODELS_DIR / card.gguf.file} is missing")
    if problems:
        reason = "; ".join(problems) + " (./run_tests.sh installs both)"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.jsonl"))}


def test_add_a_local_model(tmp_path: Path) -> None:
    _needs_llama()
    raw = tmp_path / "raw"
    shutil.copytree(paths.RAW / "elicitation", raw / "elicitation")
    before = _digest(raw / "elicitation")

    # The researcher's steps: a card for the new model, and a panel that lists it with its own grid.
    card = yaml.safe_load((paths.MODEL_CARDS / "smollm2-135m-instruct.yaml").read_text())
    card["name"] = "smollm2-135m-newcomer"
    (tmp_path / "smollm2-135m-newcomer.yaml").write_text(yaml.safe_dump(card, sort_keys=False))
    panel = yaml.safe_load((paths.PANELS / "local.yaml").read_text())
    panel["name"] = "local-plus-one"
    panel["models"].append({"card": "smollm2-135m-newcomer.yaml", "temperature": [0.7], "top_p": [0.95], "seed": [5]})
    panel_path = tmp_path / "panel.yaml"
    panel_path.write_text(yaml.safe_dump(panel, sort_keys=False))

    env = {
        "VALUELEX_RAW": str(raw),
        "VALUELEX_PROCESSED": str(tmp_path / "processed"),
        "VALUELEX_FIGURES": str(tmp_path / "figures"),
    }
    for d in ("processed", "figures", "out"):
        (tmp_path / d).mkdir()
    numbers = run_notebook("01_elicitation", tmp_path / "out", {"panel": str(panel_path), "mode": "live"}, env)

    # Only the new respondent's 15 prompts were asked; every stored answer was replayed.
    assert numbers["calls_made"] == 15
    assert numbers["store_hits"] == 1800
    assert numbers["respondents"] == 121
    after = _digest(raw / "elicitation")
    assert {k: after[k] for k in before} == before  # existing shards untouched: no call repeated
    new = [json.loads(line) for line in (raw / "elicitation" / "smollm2-135m-newcomer.jsonl").read_text().splitlines()]
    finals = [r for r in new if r["final"]]
    assert len({r["key"] for r in finals}) == len(finals) == 15

    # A second live run has nothing left to call.
    again = run_notebook("01_elicitation", tmp_path / "out", {"panel": str(panel_path), "mode": "live"}, env)
    assert again["calls_made"] == 0 and again["store_hits"] == 1815

    # The analysis downstream includes the new model.
    lexicon_numbers = run_notebook("02_lexicon", tmp_path / "out", {}, env)
    assert lexicon_numbers["incidence_shape"][0] == 121
    respondents = pd.read_csv(tmp_path / "processed" / "respondents.csv")
    assert "smollm2-135m-newcomer" in set(respondents["model"])
