"""Run files: every setting defined once, validated with errors that name the file and the field."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from valuelex import paths
from valuelex.config import ConfigError
from valuelex.settings import STAGES, EFASettings, RunSettings, load_run, parse_override


def test_default_run_resolves_to_the_committed_folders():
    run = load_run("default")
    assert run.name == "default" and run.mode == "replay"
    assert run.writes_committed_outputs and run.output_dir == paths.ROOT
    assert run.elicitation.panel == "local" and run.projective.panel == "projective_local"
    assert run.efa == EFASettings()  # nothing in the default run differs from the defaults


def test_a_new_run_writes_to_its_own_folder(tmp_path: Path):
    (tmp_path / "mine.yaml").write_text("mode: live\nelicitation: {panel: paper}\n", encoding="utf-8")
    run = load_run(tmp_path / "mine.yaml")
    assert run.name == "mine" and run.mode == "live"
    assert run.output_dir == paths.ROOT / "runs" / "mine" and not run.writes_committed_outputs


def test_overrides_win_and_are_typed():
    run = load_run("default", dict([parse_override("efa.n_factors=3"), parse_override("simulation.sizes=[60, 120]")]))
    assert run.efa.n_factors == 3 and run.simulation.sizes == (60, 120)
    assert load_run("default", {"efa.max_words": None}).efa.max_words is None
    assert load_run("default", {"efa.cutoff": 1}).efa.cutoff == 1.0


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"efa.n_factor": 3}, "efa: unknown setting 'n_factor' (did you mean 'n_factors'?)"),
        ({"efa.n_factors": "three"}, "efa.n_factors must be a whole number or 'parallel', got 'three'"),
        ({"efa.rotation": "quartimin"}, "efa.rotation must be 'oblimin' or 'promax' or 'varimax' or 'none'"),
        ({"cfa.holdout": "yes"}, "cfa.holdout must be true or false or 'auto', got 'yes'"),
        ({"mode": "lve"}, "field 'mode' must be 'replay' or 'live', got 'lve'"),
        ({"elicitation.use_system_prompt": "false"}, "must be true or false, got 'false'"),
        ({"simulation.conditions": {"a": [1]}}, "simulation.conditions.a must be a list of 2 values"),
        ({"efaa.seed": 1}, "unknown field 'efaa'"),
    ],
)
def test_mistakes_name_the_file_and_the_field(override, message):
    with pytest.raises(ConfigError) as err:
        load_run("default", override)
    assert message in str(err.value)
    assert "configs/runs/default.yaml" in str(err.value)


def test_missing_run_file_lists_the_known_runs(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"run file not found \(runs in .*: default"):
        load_run("no-such-run")


def test_bad_yaml_names_the_line(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("efa:\n  n_factors: [3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad.yaml: not valid YAML at line \d"):
        load_run(bad)


def test_override_syntax():
    assert parse_override("efa.rotation=promax") == ("efa.rotation", "promax")
    assert parse_override("projective.stem_ids=[a, b]") == ("projective.stem_ids", ["a", "b"])
    with pytest.raises(ConfigError, match="must look like section.setting=value"):
        parse_override("efa.rotation")


def test_every_stage_setting_has_a_default_and_the_report_lists_it():
    text = str(RunSettings())
    for section, cls in STAGES.items():
        assert f"\n{section}\n" in text
        for f in dataclasses.fields(cls):
            assert f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
            assert f.name in text
