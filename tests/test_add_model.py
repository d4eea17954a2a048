"""Adding a model end to end: a new card, only its calls are made, the analysis includes it."""

from __future__ import annotations

import hashlib
import json
import os
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


def _tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*.*"))}


@pytest.mark.slow
def test_a_researcher_adds_a_model_to_a_whole_run(tmp_path: Path) -> None:
    """README "Adding a model", as a researcher follows it: a card, two panels that list it, a run
    file; `valuelex plan` says what will be called, `valuelex run --yes` runs every notebook; only the
    new model's calls are made, and the committed outputs are untouched."""
    import subprocess
    import sys

    _needs_llama()
    committed = {name: _tree_digest(paths.ROOT / name) for name in ("data/processed", "figures")}
    raw = tmp_path / "raw"
    for study in ("elicitation", "projective", "judge"):
        shutil.copytree(paths.RAW / study, raw / study)
    before = {study: _digest(raw / study) for study in ("elicitation", "projective", "judge")}

    card = yaml.safe_load((paths.MODEL_CARDS / "smollm2-135m-instruct.yaml").read_text())
    card["name"] = "smollm2-135m-newcomer"
    (tmp_path / "smollm2-135m-newcomer.yaml").write_text(yaml.safe_dump(card, sort_keys=False))
    newcomer = {"card": "smollm2-135m-newcomer.yaml", "temperature": [0.7], "top_p": [0.95], "seed": [5]}
    for name in ("local", "projective_local"):
        panel = yaml.safe_load((paths.PANELS / f"{name}.yaml").read_text())
        panel["name"] = f"{name}-plus-one"
        panel["models"].append(newcomer)
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(panel, sort_keys=False))
    run_file = tmp_path / "plus_one.yaml"
    run_file.write_text(
        yaml.safe_dump(
            {
                "name": "plus_one",
                "mode": "live",
                "output": str(tmp_path / "out"),
                "raw": str(raw),
                "elicitation": {"panel": str(tmp_path / "local.yaml")},
                "efa": {"n_boot": 5, "parallel_iter": 5, "n_boot_within": 3},
                # the embedding scorer: the stance scorer's judge (Qwen2.5-Coder 1.5B, its calibration
                # fitted for it) is not installed by ./run_tests.sh; three stems, one respondent a model
                "projective": {
                    "panel": str(tmp_path / "projective_local.yaml"),
                    "scorer": "embedding",
                    "second_scorer": None,
                    "stem_ids": ["c01", "sc3", "so1"],
                    "respondents_per_model": 1,
                    "validate": False,
                    "n_boot": 50,
                },
                "simulation": {
                    "n_words": 60,
                    "n_respondents": 200,
                    "sizes": [100],
                    "replications": 1,
                    "parallel_iter": 3,
                    "word_sizes": [120],
                    "model_counts": [4],
                    "per_model": [10],
                    "model_grid_parallel_iter": 3,
                },
            },
            sort_keys=False,
        )
    )

    def valuelex(*args: str) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VALUELEX_")}
        return subprocess.run(
            [sys.executable, "-m", "valuelex.cli", *args], cwd=paths.ROOT, env=env, capture_output=True, text=True
        )

    plan = valuelex("plan", str(run_file))
    assert plan.returncode == 0, plan.stderr
    assert "smollm2-135m-newcomer" in plan.stdout and "to call                             0" not in plan.stdout
    first = valuelex("run", str(run_file), "--yes")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]

    # only the new model's calls were made: every stored shard is as it was, byte for byte
    for study, digests in before.items():
        after = _digest(raw / study)
        assert {k: after[k] for k in digests} == digests, study
    new = [json.loads(line) for line in (raw / "elicitation" / "smollm2-135m-newcomer.jsonl").read_text().splitlines()]
    assert len({r["key"] for r in new if r["final"]}) == 15
    # the run wrote to its own folder; the committed outputs are untouched
    assert {name: _tree_digest(paths.ROOT / name) for name in committed} == committed
    out = tmp_path / "out"
    respondents = pd.read_csv(out / "data" / "processed" / "respondents.csv")
    assert "smollm2-135m-newcomer" in set(respondents["model"])
    scores = pd.read_csv(out / "data" / "processed" / "projective_scores.csv")
    assert "smollm2-135m-newcomer" in set(scores["model"])
    assert (out / "build" / "html" / "index.html").exists()

    # a second plan has nothing left to call
    again = valuelex("plan", str(run_file))
    assert again.returncode == 0 and "to call                             0" in again.stdout, again.stdout
