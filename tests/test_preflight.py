"""Preflight: every card gets a verdict before anything is paid."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from valuelex.app import plan, preflight
from valuelex.core import paths
from valuelex.llm.cards import load_model_card
from valuelex.llm.local import free_port
from valuelex.settings import load_run


def _api_card(**changes):
    card = load_model_card(paths.MODEL_CARDS / "gpt-4.yaml")
    return replace(card, **changes)


def test_missing_key_is_reported_without_contacting(monkeypatch):
    monkeypatch.delenv("VALUELEX_TEST_UNSET_KEY", raising=False)
    status = preflight.check_card(_api_card(api_key_env="VALUELEX_TEST_UNSET_KEY"))
    assert status.status == "key missing"
    assert status.detail == "export VALUELEX_TEST_UNSET_KEY"


def test_closed_port_is_unreachable(monkeypatch):
    monkeypatch.setenv("VALUELEX_TEST_KEY", "test-key-not-real")
    url = f"http://127.0.0.1:{free_port()}/v1"
    status = preflight.check_card(_api_card(api_key_env="VALUELEX_TEST_KEY", base_url=url), timeout_s=2)
    assert status.status == "unreachable"
    assert "test-key-not-real" not in status.detail


def test_local_card_without_gguf_is_not_installed(tmp_path):
    card = load_model_card(paths.MODEL_CARDS / "smollm2-135m-instruct.yaml")
    status = preflight.check_card(card, models_dir=tmp_path)
    assert status.status == "not installed"


def test_report_orders_and_counts(monkeypatch):
    monkeypatch.delenv("VALUELEX_TEST_UNSET_KEY", raising=False)
    cards = [_api_card(name=f"m{i}", api_key_env="VALUELEX_TEST_UNSET_KEY") for i in range(3)]
    result = preflight.check(cards)
    assert result.counts() == {"key missing": 3}
    assert not result.ready
    assert list(result.table()["card"]) == ["m0", "m1", "m2"]
    assert "key missing: the card's key variable is not set" in str(result)


# Preflight before money: what a run needs, said by `plan` and enforced by `run` before any call ---------
def _live_run(tmp_path: Path, projective: str = "") -> Path:
    """A live run whose one new respondent (SmolLM2, a seed the dataset does not have) has calls to make."""
    (tmp_path / "panel.yaml").write_text(
        "name: tiny\nmodels: [smollm2-135m-instruct]\n"
        "decoding: {temperature: [0.7], top_p: [0.95], seed: [99]}\nmax_tokens: 32\n",
        encoding="utf-8",
    )
    panel = tmp_path / "panel.yaml"
    run = tmp_path / "mine.yaml"
    run.write_text(
        f"mode: live\noutput: {tmp_path / 'out'}\nelicitation: {{panel: {panel}}}\n"
        f"projective: {{panel: {panel}, stem_ids: [c01, sc3]{projective}}}\n",
        encoding="utf-8",
    )
    return run


def test_a_replay_run_has_nothing_to_check():
    run = load_run("default")
    assert preflight.cards_to_check(run) == [] and plan.needs(run, plan.plan_run(run)) == []
    assert "replay run" in preflight.nothing_to_check(run)


def test_check_asks_only_for_the_models_a_run_calls(tmp_path: Path):
    run = load_run(_live_run(tmp_path))
    assert [c.name for c in preflight.cards_to_check(run)] == ["smollm2-135m-instruct", "qwen2.5-coder-1.5b-instruct"]
    embedding = load_run(_live_run(tmp_path, ", scorer: embedding, second_scorer: null"))
    assert [c.name for c in preflight.cards_to_check(embedding)] == ["smollm2-135m-instruct"]  # no judge calls


def test_the_plan_says_what_is_not_installed_and_run_stops_before_any_call(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(paths, "MODELS_DIR", tmp_path / "no-models")
    run = load_run(_live_run(tmp_path))
    result = plan.plan_run(run)
    text = "\n".join(result.needs)
    assert "qwen2.5-coder-1.5b-instruct (the projective judge, for judge (stance scorer)): not installed" in text
    assert (
        'install: ./run_all.sh --setup-only --local-models "smollm2-135m-instruct qwen2.5-coder-1.5b-instruct"' in text
    )
    assert "--set projective.scorer=embedding --set projective.second_scorer=null" in text  # the scorer instead
    assert "Before any call" in str(result)
    with pytest.raises(plan.NotReady) as stop:
        plan.require_ready(result)
    assert "\n" not in str(stop.value) and "nothing was called" in str(stop.value)
    # without the judge's scorer, only the panel's model is missing, and no other scorer is suggested
    embedding = plan.plan_run(load_run(_live_run(tmp_path, ", scorer: embedding, second_scorer: null")))
    assert embedding.needs == [
        f"smollm2-135m-instruct (a local model, for elicitation, projective completions): not installed in {tmp_path / 'no-models'}",
        "install: ./run_all.sh --setup-only --local-models smollm2-135m-instruct",
    ]


def test_valuelex_run_stops_before_any_call_with_one_line(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("VALUELEX_")}
    env["VALUELEX_MODELS_DIR"] = str(tmp_path / "no-models")
    out = subprocess.run(
        [sys.executable, "-m", "valuelex", "run", str(_live_run(tmp_path)), "--yes"],
        cwd=paths.ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stderr.count("\n") == 1 and "cannot start, nothing was called" in out.stderr
    assert "./run_all.sh --setup-only --local-models" in out.stderr and "Traceback" not in out.stderr
    assert "Before any call" in out.stdout  # the plan, printed first
    assert not (tmp_path / "out").exists()  # no notebook ran, no store was written


def test_the_plan_names_each_unset_key_once_with_its_models(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    (tmp_path / "panel.yaml").write_text(
        "name: api\nmodels: [gpt-4, gpt-4o]\ndecoding: {temperature: [0.7], top_p: [0.95], seed: [1]}\n",
        encoding="utf-8",
    )
    (tmp_path / "api.yaml").write_text(
        f"mode: live\noutput: {tmp_path / 'out'}\nelicitation: {{panel: {tmp_path / 'panel.yaml'}}}\n"
        f"projective: {{panel: {tmp_path / 'panel.yaml'}, scorer: embedding, second_scorer: null}}\n",
        encoding="utf-8",
    )
    result = plan.plan_run(load_run(tmp_path / "api.yaml"))
    assert result.needs == ["key not set: export OPENAI_API_KEY=... (for gpt-4, gpt-4o)"]
    with pytest.raises(plan.NotReady, match="export OPENAI_API_KEY"):
        plan.require_ready(result)


def test_plan_and_check_find_cards_a_panel_names_by_path(tmp_path: Path):
    """The simulated panels name their cards by path (configs/simulated/models/), not in configs/models/."""
    run_file = tmp_path / "sim.yaml"
    run_file.write_text(
        "name: sim\nmode: live\nelicitation: {panel: sim_small}\n"
        "projective: {panel: sim_small_projective, judge: qwen2.5-coder-1.5b-instruct}\n"
    )
    run = load_run(run_file)
    cards = plan.run_cards(run)
    assert {f"sim-m0{i}" for i in range(1, 7)} <= set(cards) and "qwen2.5-coder-1.5b-instruct" in cards
    population = (paths.CONFIGS / "simulated" / "population.yaml").resolve()
    assert cards["sim-m01"].provider == "simulated" and cards["sim-m01"].population == population
    # the run starts the simulated server: check says so (not "unreachable"), and the run is ready
    report = preflight.check([cards[f"sim-m0{i}"] for i in range(1, 7)])
    assert {s.status for s in report.statuses} == {"started by the run"} and report.ready
    result = plan.plan_run(run)
    models = {model for _, part, _ in result.parts for model in part.per_model}
    assert {"sim-m01", "qwen2.5-coder-1.5b-instruct"} <= models
    checked = [c.name for c in preflight.cards_to_check(run)]
    assert checked[:6] == [f"sim-m0{i}" for i in range(1, 7)] and checked[-1] == "qwen2.5-coder-1.5b-instruct"
