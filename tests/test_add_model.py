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
from valuelex.core import paths
from valuelex.llm.cards import load_model_card

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
    shutil.copytree(paths.DATASET / "elicitation", raw / "elicitation")
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


def _scratch_project(folder: Path) -> Path:
    """The checkout's files as a fresh clone has them (tracked, plus new files git does not ignore),
    committed to a git repository of their own, so that ``git status`` tells what a run changed."""
    import subprocess

    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=paths.ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = paths.ROOT / name
        if source.is_file():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, folder / name)
    _git(folder, "init", "-q")
    _git(folder, "add", "-A")
    _git(folder, "commit", "-q", "-m", "the project as cloned")
    return folder


def _git(folder: Path, *args: str) -> str:
    import subprocess

    identity = ["-c", "user.name=researcher", "-c", "user.email=researcher@example.org"]
    return subprocess.run(["git", *identity, *args], cwd=folder, capture_output=True, text=True, check=True).stdout


def _serve(gguf: Path, alias: str, log: Path):
    """llama.cpp's OpenAI-compatible server on loopback, without a key (README "Adding a model")."""
    import subprocess
    import sys
    import time
    import urllib.request

    from valuelex.llm.local import free_port

    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", alias,
               "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    server = subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert server.poll() is None, log.read_text(errors="replace")[-2000:]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2):
                return server, port
        except OSError:
            time.sleep(0.25)
    server.kill()
    raise AssertionError("the llama.cpp server did not start")


@pytest.mark.slow
def test_a_researcher_adds_a_model_as_the_readme_says(tmp_path: Path) -> None:
    """README "Adding a model", followed as written in a fresh copy of the project: a keyless model
    served on loopback (llama.cpp's server with the SmolLM2 GGUF), its card, two panels that list it,
    a run file copied from default.yaml; `valuelex check`, `plan`, `run --yes`. Only the new model's
    calls are made, they go to the run's own store, and nothing tracked changes: `git status` is clean."""
    import subprocess
    import sys

    _needs_llama()
    project = _scratch_project(tmp_path / "project")
    gguf = paths.MODELS_DIR / load_model_card(paths.MODEL_CARDS / "smollm2-135m-instruct.yaml").gguf.file
    server, port = _serve(gguf, "my-model", tmp_path / "server.log")
    try:
        # 1. the model card: a keyless OpenAI-compatible server (no api_key_env)
        card = {
            "name": "my-model", "provider": "openai_compatible", "base_url": f"http://127.0.0.1:{port}/v1",
            "model": "my-model", "api": "chat", "family": "SmolLM2", "params_b": 0.135,
            "training_stage": "aligned", "price_per_mtok": {"input": 0.0, "output": 0.0},
        }  # fmt: skip
        (project / "configs/models/my-model.yaml").write_text(yaml.safe_dump(card, sort_keys=False))
        # 2. two panels that list it (copies of the committed ones), here with a one-respondent grid of its own
        newcomer = {"card": "my-model", "temperature": [0.7], "top_p": [0.95], "seed": [5]}
        for source, target in (("local", "mine"), ("projective_local", "mine_projective")):
            panel = yaml.safe_load((project / f"configs/panels/{source}.yaml").read_text())
            panel["name"] = target
            panel["models"].append(newcomer)
            (project / f"configs/panels/{target}.yaml").write_text(yaml.safe_dump(panel, sort_keys=False))
        # 3. the run file: a copy of default.yaml, made live, with the two panels; the embedding scorer
        # (the stance scorer's judge is not installed here); small stage settings to keep CI short
        shutil.copy(project / "configs/runs/default.yaml", project / "configs/runs/mine.yaml")
        run = yaml.safe_load((project / "configs/runs/mine.yaml").read_text())
        run["mode"] = "live"
        run["elicitation"] = {**run.get("elicitation", {}), "panel": "mine"}
        run["projective"] = {
            **run.get("projective", {}), "panel": "mine_projective", "scorer": "embedding", "second_scorer": None,
            "stem_ids": ["c01", "sc3", "so1"], "respondents_per_model": 1, "validate": False, "n_boot": 50,
        }  # fmt: skip
        run["efa"] = {"n_boot": 5, "parallel_iter": 5, "n_boot_within": 3, "count_resamples": 3}
        run["simulation"] = {
            "n_words": 60, "n_respondents": 200, "sizes": [100], "replications": 1, "parallel_iter": 3,
            "word_sizes": [120], "model_counts": [4], "per_model": [10], "model_grid_parallel_iter": 3,
        }  # fmt: skip
        (project / "configs/runs/mine.yaml").write_text(yaml.safe_dump(run, sort_keys=False))
        # 4. the researcher commits the configuration (the run's manifest then names a clean commit)
        _git(project, "add", "configs")
        _git(project, "commit", "-q", "-m", "my model, my panels, my run")

        def valuelex(*args: str) -> subprocess.CompletedProcess:
            env = {k: v for k, v in os.environ.items() if not k.startswith("VALUELEX_")}
            env["VALUELEX_MODELS_DIR"] = str(paths.MODELS_DIR)
            return subprocess.run(
                [sys.executable, "-m", "valuelex", *args], cwd=project, env=env, capture_output=True, text=True
            )

        check = valuelex("check", "mine")
        assert check.returncode == 0, check.stdout + check.stderr
        assert "my-model" in check.stdout and "available" in check.stdout
        assert "qwen2.5" not in check.stdout  # only what the run calls is checked
        plan = valuelex("plan", "mine")
        assert plan.returncode == 0, plan.stderr
        calls = {line.split()[-3]: int(line.split()[-2]) for line in plan.stdout.splitlines() if "my-model" in line}
        assert calls and all(n > 0 for n in calls.values()) and "Before any call" not in plan.stdout, plan.stdout
        first = valuelex("run", "mine", "--yes")
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]

        # nothing tracked changed: no committed output, no committed answer, no configuration
        assert _git(project, "status", "--porcelain") == ""
        own = project / "runs" / "mine"
        assert sorted(p.name for p in (own / "raw").glob("*/*.jsonl")) == ["my-model.jsonl", "my-model.jsonl"]
        asked = [json.loads(line) for line in (own / "raw" / "elicitation" / "my-model.jsonl").read_text().splitlines()]
        assert len({r["key"] for r in asked if r["final"]}) == 15  # one respondent x 15 prompts; the rest replayed
        respondents = pd.read_csv(own / "data" / "processed" / "respondents.csv")
        assert "my-model" in set(respondents["model"]) and len(respondents) == 121
        scores = pd.read_csv(own / "data" / "processed" / "projective_scores.csv")
        assert "my-model" in set(scores["model"])
        manifest = json.loads((own / "data" / "processed" / "run_manifest.json").read_text())
        assert manifest["response_store"] == {
            "own": "runs/mine/raw", "base": "data/raw", "note": "new answers are written to 'own'; 'base' is read only"
        }  # fmt: skip
        assert manifest["git_dirty"] is False and (own / "build" / "html" / "index.html").exists()
        again = valuelex("plan", "mine")
        assert again.returncode == 0 and "to call                             0" in again.stdout, again.stdout
    finally:
        server.terminate()
        server.wait(30)
