"""The elicitation stage: the prompts file checked field by field, one-line errors, and notebook 01 with failed calls."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import run_notebook
from valuelex.core import paths
from valuelex.core.errors import ConfigError
from valuelex.elicit import build_requests, load_prompts
from valuelex.llm.cards import load_panel
from valuelex.parse import parse_responses

GOOD = """\
version: "1"
system: "Answer with words."
prompts:
  - {id: p01, source: paper, text: "Give words that best describe your value system"}
  - {id: p02, source: ours, text: "Which words capture what you care about?"}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "prompts.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_committed_prompts_load():
    prompts = load_prompts()
    assert len(prompts.prompts) == 15 and prompts.version == "1" and prompts.system
    assert sum(p.source == "paper" for p in prompts.prompts) == 2


def test_a_good_prompts_file(tmp_path: Path):
    prompts = load_prompts(write(tmp_path, GOOD))
    assert [p.id for p in prompts.prompts] == ["p01", "p02"] and prompts.system == "Answer with words."
    assert load_prompts(write(tmp_path, GOOD.replace('system: "Answer with words."\n', ""))).system is None
    assert load_prompts(write(tmp_path, GOOD.replace('version: "1"', "version: 2"))).version == "2"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("system:", "systm:", "unknown field 'systm' (allowed: version, system, prompts)"),
        ('version: "1"\n', "", "missing required field 'version'"),
        (
            'system: "Answer with words."',
            'system: ""',
            "field 'system' is empty; leave it out (or null) for no system prompt",
        ),
        ('system: "Answer with words."', "system: [a]", "field 'system' must be str or NoneType, got ['a']"),
        ("source: ours", "source: theirs", "field 'prompts[1].source' must be paper or ours, got 'theirs'"),
        ("id: p02", "id: p01", "field 'prompts' has the id 'p01' twice"),
        (
            "Which words capture what you care about?",
            "Give words that best describe your value system",
            "field 'prompts' has the text 'Give words that best describe your value system' twice",
        ),
        (
            "{id: p02, source: ours,",
            "{id: p02, sorce: ours,",
            "unknown field 'prompts[1].sorce' (allowed: id, text, source)",
        ),
        (', text: "Which words capture what you care about?"', "", "missing required field 'prompts[1].text'"),
        ('text: "Which words capture what you care about?"', 'text: " "', "field 'prompts[1].text' is empty"),
        ("id: p02", "id: 2", "field 'prompts[1].id' must be str, got 2"),
    ],
)
def test_prompts_file_mistakes_are_named(tmp_path: Path, old: str, new: str, expected: str):
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(ConfigError) as err:
        load_prompts(path)
    assert str(err.value) == f"{path}: {expected}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "the file is empty"),
        (
            "prompts: [\n",
            "not valid YAML at line 2, column 1: expected the node content, but found '<stream end>'",
        ),
        ('version: "1"\nprompts: []\n', "field 'prompts' must list at least one prompt"),
        ('version: "1"\nprompts: [p01]\n', "field 'prompts[0]' must be a mapping with id, text and source"),
    ],
)
def test_broken_prompts_files(tmp_path: Path, text: str, expected: str):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_prompts(path)
    assert str(err.value) == f"{path}: {expected}"


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({"use_system_prompt": "false"}, "parameter use_system_prompt must be True or False, got 'false'"),
        ({"max_models": "abc"}, "parameter max_models must be a positive integer or None, got 'abc'"),
        ({"max_models": 0}, "parameter max_models must be a positive integer or None, got 0"),
        ({"max_models": True}, "parameter max_models must be a positive integer or None, got True"),
    ],
)
def test_notebook_parameters_of_the_wrong_type(kw: dict, expected: str):
    with pytest.raises(ConfigError) as err:
        build_requests(load_panel("local"), load_prompts(), **kw)
    assert str(err.value) == expected


def test_no_system_prompt_and_max_models():
    panel, prompts = load_panel("local"), load_prompts()
    requests = build_requests(panel, prompts, use_system_prompt=False, max_models=1)
    assert len(requests) == 30 * 15 and {r.model for r in requests} == {panel.models[0]}
    assert all(len(r.messages) == 1 for r in requests)


def _cli(*args: str, cwd: Path = paths.ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(paths.ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "valuelex.elicit", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )


def test_cli_configuration_mistakes_are_one_line_with_exit_code_2(tmp_path: Path):
    panel = tmp_path / "p.yaml"
    panel.write_text("name: p\nmodels: []\ndecoding: {temperature: [0.7]}\n")
    run = _cli("--panel", str(panel), "--mode", "plan")
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr == f"error: {panel}: field 'models' must list at least one model\n"
    empty = write(tmp_path, "")
    run = _cli("--prompts", str(empty), "--mode", "plan")
    assert (run.returncode, run.stderr) == (2, f"error: {empty}: the file is empty\n")


def test_cli_replay_with_an_empty_store_names_what_is_missing(tmp_path: Path):
    run = _cli("--store", str(tmp_path / "empty"))
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.startswith(
        f"error: replay mode: 1800 of 1800 requests are not in the store {tmp_path / 'empty'}:"
    )
    assert run.stderr.rstrip().endswith("Run in live mode to make these calls.")


def test_parsing_survives_missing_text():
    responses = pd.DataFrame(
        {
            "respondent": ["a", "a", "b"],
            "model": ["m"] * 3,
            "training_stage": ["instruct"] * 3,
            "prompt_id": ["p01", "p02", "p01"],
            "sample": [0, 0, 0],
            "status": ["error", "ok", "ok"],
            "text": [np.nan, np.nan, "Honesty"],
        }
    )
    out, descriptors = parse_responses(responses)
    assert out["parse_status"].tolist() == ["error", "empty", "ok"] and descriptors["raw"].tolist() == ["Honesty"]


def test_notebook_01_with_failed_calls_in_the_store(tmp_path: Path):
    """Final errors in the store are answers with status "error": counted, shown, never parsed."""
    raw = tmp_path / "raw" / "elicitation"
    raw.mkdir(parents=True)
    shard = paths.DATASET / "elicitation" / "smollm2-135m-instruct.jsonl"
    failed = 0
    lines = []
    for line in shard.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        if rec["request"]["prompt_id"] in ("p03", "p07") and rec["final"]:
            failed += 1
            rec |= {"status": "error", "usable": False, "text": None, "finish_reason": None, "usage": None}
            rec["error"] = {"type": "http_500", "status_code": 500, "message": "server error", "raw_body": "{}"}
        lines.append(json.dumps(rec, sort_keys=True, separators=(",", ":"), ensure_ascii=False))
    lines.append(lines[0][: len(lines[0]) // 2])  # and a torn last line: reported in the notebook, skipped
    (raw / shard.name).write_text("\n".join(lines), encoding="utf-8")
    env = {
        "VALUELEX_RAW": str(tmp_path / "raw"),
        "VALUELEX_PROCESSED": str(tmp_path / "processed"),
        "VALUELEX_FIGURES": str(tmp_path / "figures"),
    }
    for d in ("processed", "figures", "out"):
        (tmp_path / d).mkdir()
    numbers = run_notebook("01_elicitation", tmp_path / "out", {"max_models": 1, "examples_per_model": 30}, env)
    assert failed == 2 * 30 and numbers["responses"] == 450 and numbers["respondents"] == 30
    responses = pd.read_csv(tmp_path / "processed" / "responses.csv")
    errors = responses[responses["parse_status"] == "error"]
    assert len(errors) == failed and set(errors["error"]) == {"http_500"} and errors["text"].isna().all()
    assert (responses.loc[responses["parse_status"] != "error", "error"].isna()).all()
    executed = json.loads((tmp_path / "out" / "01_elicitation.ipynb").read_text(encoding="utf-8"))
    stderr = "".join(
        "".join(o["text"]) for c in executed["cells"] for o in c.get("outputs", []) if o.get("name") == "stderr"
    )
    torn = f"{raw / shard.name}:{len(lines)}: torn last line (a writer was killed mid-write)"
    assert torn in stderr  # the damaged line is shown to the reader of the notebook


def test_the_stage_plans_before_any_call_and_asks_only_what_it_planned(tmp_path: Path, monkeypatch):
    """Live, against a real server: the plan (what the notebook prints first) counts the stored requests and
    prices the others without calling; the run then asks exactly those, through the runner that planned them;
    ``valuelex plan`` counts the same request set (the stage builds it for both)."""
    from tests.fault_server import FaultServer, write_card
    from valuelex import stages
    from valuelex.app.plan import plan_run
    from valuelex.settings import load_run

    monkeypatch.setenv("VALUELEX_TEST_KEY", "test-key-stage-plan")
    folders = stages.Folders(tmp_path / "processed", tmp_path / "figures", tmp_path / "build", tmp_path / "raw")
    for name in ("RAW", "PROCESSED", "FIGURES", "BUILD"):  # `valuelex plan` finds the run's store where the stage does
        monkeypatch.setenv(f"VALUELEX_{name}", str(getattr(folders, name.lower())))
    monkeypatch.setenv("VALUELEX_RAW_BASE", "")
    with FaultServer() as server:
        for model in ("fault-a", "fault-b"):
            write_card(tmp_path, model, server.base_url)
        panel = tmp_path / "panel.yaml"
        panel.write_text(
            "name: faults\nmodels: [fault-a.yaml, fault-b.yaml]\ndecoding: {temperature: [0.7], seed: [1]}\n"
        )
        overrides = {"elicitation.panel": str(panel), "mode": "live", "elicitation.examples_per_model": 1}
        first = stages.Run(load_run("default", {**overrides, "elicitation.max_models": 1}), folders)
        assert stages.elicitation.run(first).metrics()["calls_made"] == 15  # fault-a's 15 prompts, now stored

        run = stages.Run(load_run("default", overrides), folders)
        plan = stages.elicitation.plan(run)
        assert server.stats()["total"] == 15  # planning called nothing
        calls = plan.calls
        assert (calls.requested, calls.stored, calls.to_call) == (30, 15, 15) and calls.est_cost_usd > 0
        assert set(calls.per_model) == {"fault-b"} and "2 models" in plan.panel_note() and "Calls" in str(plan)
        app = next(part for name, part, _ in plan_run(run.settings).parts if name == "elicitation")
        assert (app.requested, app.stored, app.to_call, app.est_cost_usd) == (30, 15, 15, calls.est_cost_usd)

        result = stages.elicitation.run(run, plan)
        assert server.stats()["total"] == 30  # the 15 planned calls, and no other
    numbers = result.metrics()
    assert (numbers["calls_made"], numbers["store_hits"], numbers["responses"], numbers["respondents"]) == (
        15,
        15,
        30,
        2,
    )
    assert result.report is plan.runner.report and len(pd.read_csv(folders.processed / "responses.csv")) == 30
    assert stages.elicitation.plan(run).calls.to_call == 0  # a second live run has nothing left to call
