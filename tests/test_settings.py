"""Run files: every setting defined once with its valid range, a run's identity deciding what it may
write, and errors that name the file (or the --set) and the field."""

from __future__ import annotations

import dataclasses
import subprocess
import types
import typing
from pathlib import Path
from typing import Annotated, get_args, get_origin

import pytest

from valuelex import settings
from valuelex.core import paths
from valuelex.core.errors import ConfigError
from valuelex.psychometrics.efa.settings import EFASettings
from valuelex.settings import (
    STAGES,
    RunSettings,
    is_committed_run,
    load_run,
    parse_override,
    parse_overrides,
)

DEFAULT_FILE = paths.CONFIGS / "runs" / "default.yaml"


def _run_file(folder: Path, text: str, name: str = "mine") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------
# Which run writes what
# ------------------------------------------------------------------------------------------
def test_default_run_resolves_to_the_committed_folders():
    run = load_run("default")
    assert run.name == "default" and run.mode == "replay"
    assert run.committed and run.writes_committed_outputs and run.output_dir == paths.ROOT
    assert run.raw_dir == (paths.DATA / "raw").resolve() and run.base_dir is None  # its store is the dataset
    assert run.elicitation.panel == "local" and run.projective.panel == "projective_local"
    assert run.efa == EFASettings()  # nothing in the default run differs from the defaults


def test_a_new_run_writes_to_its_own_folder_over_the_dataset(tmp_path: Path):
    run = load_run(_run_file(tmp_path, "mode: live\nelicitation: {panel: paper}\n"))
    assert run.name == "mine" and run.mode == "live" and not run.committed
    assert run.output_dir == paths.ROOT / "runs" / "mine"
    assert run.raw_dir == paths.ROOT / "runs" / "mine" / "raw"  # its own store ...
    assert run.base_dir == (paths.DATA / "raw").resolve()  # ... reads the dataset, never writes it


def test_a_copy_of_the_default_run_is_not_the_committed_run_even_with_output_dot(tmp_path: Path):
    """README: copy default.yaml. What the copy carries along (even an old `output: .`) does not make it
    the committed run: it writes under runs/NAME/ and stores under runs/NAME/raw/."""
    text = DEFAULT_FILE.read_text(encoding="utf-8").replace("mode: replay", "mode: live") + "output: .\n"
    for folder in (tmp_path, paths.CONFIGS / "runs"):  # anywhere, also next to the default run
        path = _run_file(folder, text, name="test-copy-of-default")
        try:
            run = load_run(path)
        finally:
            path.unlink()
        assert not run.committed
        assert run.output_dir == paths.ROOT / "runs" / "test-copy-of-default"
        assert run.raw_dir == run.output_dir / "raw" and run.base_dir == (paths.DATA / "raw").resolve()


def test_the_default_run_with_a_set_writes_elsewhere():
    run = load_run("default", {"efa.n_factors": 3})
    assert not run.committed and run.output_dir == paths.ROOT / "runs" / "default-changed"
    assert run.raw_dir == run.output_dir / "raw" and run.base_dir == (paths.DATA / "raw").resolve()
    # even a --set that names the committed folders
    run = load_run("default", {"output": "."})
    assert not run.committed and run.output_dir == paths.ROOT / "runs" / "default-changed"


def test_an_edited_default_run_is_not_the_committed_run(tmp_path: Path, monkeypatch):
    """The committed run is the file as committed: edited in place, it no longer writes the committed outputs."""
    project = tmp_path / "project"
    runs = project / "configs" / "runs"
    runs.mkdir(parents=True)
    (runs / "default.yaml").write_text(DEFAULT_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(project)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "x"], check=True)
    monkeypatch.setattr(paths, "ROOT", project)
    monkeypatch.setattr(settings, "RUNS", runs)
    assert is_committed_run(runs / "default.yaml")
    assert not is_committed_run(runs / "default.yaml", {"efa.n_factors": 3})
    with open(runs / "default.yaml", "a", encoding="utf-8") as fh:
        fh.write("efa: {n_factors: 3}\n")
    assert not is_committed_run(runs / "default.yaml")


def test_a_name_line_must_match_the_file(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"mine.yaml: field 'name' is 'default' but the run file is mine.yaml"):
        load_run(_run_file(tmp_path, "name: default\nmode: live\n"))
    assert load_run(_run_file(tmp_path, "name: mine\n")).name == "mine"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("output: data/raw\n", "field 'output' is data/raw, inside the project, where a run writes only under runs/"),
        ("output: figures\n", "field 'output' is figures, inside the project"),
        ("output: configs/runs\n", "field 'output' is configs/runs, inside the project"),
        ("output: notebooks\n", "field 'output' is notebooks, inside the project"),
        ("output: valuelex\n", "field 'output' is valuelex, inside the project"),
        ("output: README.md\n", "field 'output' must be a folder, but README.md is a file"),
        ("raw: README.md\n", "field 'raw' must be a folder, but README.md is a file"),
        ("raw: data/raw\n", "field 'raw' is data/raw, inside the committed dataset, which no run writes"),
        ("raw: data/raw/elicitation\n", "field 'raw' is data/raw/elicitation, inside the committed dataset"),
        ("raw: data/processed\n", "field 'raw' is data/processed, inside the project"),
        ("base: no/such/store\n", "field 'base' must be an existing response store folder, got no/such/store"),
        ("raw: {store}\nbase: {store}\n", "field 'base' must differ from the run's own store 'raw' ({store})"),
    ],
)
def test_a_run_never_writes_inside_the_project_but_under_runs(tmp_path: Path, text: str, message: str):
    (tmp_path / "store").mkdir()
    text, message = text.format(store=tmp_path / "store"), message.format(store=tmp_path / "store")
    with pytest.raises(ConfigError) as err:
        load_run(_run_file(tmp_path, text))
    assert str(err.value).startswith(f"{tmp_path / 'mine.yaml'}: ") and message in str(err.value)


def test_folders_a_run_may_write(tmp_path: Path):
    run = load_run(_run_file(tmp_path, f"output: {tmp_path / 'out'}\nraw: runs/mine-store\nbase: null\n"))
    assert run.output_dir == tmp_path / "out" and run.raw_dir == paths.ROOT / "runs" / "mine-store"
    assert run.base_dir is None  # a store without the dataset under it: everything is asked afresh
    run = load_run(_run_file(tmp_path, f"output: {tmp_path / 'out'}\n"))
    assert run.raw_dir == tmp_path / "out" / "raw"


def test_the_committed_run_keeps_the_committed_folders():
    with pytest.raises(ConfigError, match="field 'output' is data, inside the project"):
        load_run("default", {"output": "data"})  # a --set makes it another run: its folder rules apply


# ------------------------------------------------------------------------------------------
# Types and ranges
# ------------------------------------------------------------------------------------------
def test_overrides_win_and_are_typed():
    run = load_run("default", dict([parse_override("efa.n_factors=3"), parse_override("simulation.sizes=[60, 120]")]))
    assert run.efa.n_factors == 3 and run.simulation.sizes == (60, 120)
    assert load_run("default", {"efa.max_words": None}).efa.max_words is None
    assert load_run("default", {"efa.cutoff": 1}).efa.cutoff == 1.0


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"efa.n_factor": 3}, "--set efa.n_factor=3: efa: unknown setting 'n_factor' (did you mean 'n_factors'?)"),
        ({"efa.n_factors": "three"}, "efa.n_factors must be a whole number >= 1 or 'parallel', got 'three'"),
        ({"efa.rotation": "quartimin"}, "efa.rotation must be 'oblimin' or 'promax' or 'varimax' or 'none'"),
        ({"cfa.holdout": "yes"}, "cfa.holdout must be true or false or 'auto', got 'yes'"),
        ({"mode": "lve"}, "--set mode=lve: field 'mode' must be 'replay' or 'live', got 'lve'"),
        ({"elicitation.use_system_prompt": "false"}, "must be true or false, got 'false'"),
        ({"simulation.conditions": {"a": [1]}}, "simulation.conditions.a must be a list of 2 values"),
        ({"efaa.seed": 1}, "--set efaa.seed=1: unknown section 'efaa' (did you mean 'efa'?)"),
        ({"bogus": 1}, "--set bogus=1: unknown field 'bogus'"),
    ],
)
def test_a_set_mistake_is_blamed_on_the_set(override, message):
    with pytest.raises(ConfigError) as err:
        load_run("default", override)
    assert message in str(err.value)
    assert str(err.value).startswith("--set ") and "default.yaml" not in str(err.value)


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        # issue 19.6's list, then every kind of range
        ("efa.cutoff", 5, "efa.cutoff must be a number above 0 and at most 1, got 5"),
        ("efa.n_boot", -5, "efa.n_boot must be a whole number >= 2, got -5"),
        ("semantic.k_min", 20, "semantic.k_min (20) must be at most semantic.k_max (12)"),
        ("lexicon.min_respondents", -3, "lexicon.min_respondents must be a whole number >= 1, got -3"),
        ("efa.parallel_quantile", 95, "efa.parallel_quantile must be a number above 0 and below 1, got 95 (a share"),
        ("efa.n_factors", 0, "efa.n_factors must be a whole number >= 1 or 'parallel', got 0"),
        ("efa.min_frequency", 1, "efa.min_frequency must be a number from 0 to below 1, got 1"),
        ("efa.max_words", 1, "efa.max_words must be a whole number >= 2 or 'auto' or null, got 1"),
        ("efa.seed", -1, "efa.seed must be a whole number from 0 to 4294967295, got -1"),
        ("efa.parallel_iter", 0, "efa.parallel_iter must be a whole number >= 1, got 0"),
        ("cfa.holdout_fraction", 1, "cfa.holdout_fraction must be a number above 0 and below 1, got 1"),
        ("cfa.max_indicators", 1, "cfa.max_indicators must be a whole number >= 2, got 1"),
        ("semantic.tie_margin", 0.5, "semantic.tie_margin (0.5) must be at most semantic.weak_margin (0.03)"),
        ("semantic.n_permutations", 0, "semantic.n_permutations must be a whole number >= 1, got 0"),
        ("semantic.label_top", -1, "semantic.label_top must be a whole number >= 0, got -1"),
        ("projective.n_boot", 1, "projective.n_boot must be a whole number >= 2, got 1"),
        ("projective.max_models", 0, "projective.max_models must be a whole number >= 1 or null, got 0"),
        ("projective.stem_ids", [], "projective.stem_ids must be a list of at least 1 value or null, got []"),
        ("projective.second_scorer", "stance", "projective.second_scorer must differ from projective.scorer"),
        ("simulation.sizes", [5], "simulation.sizes[0] must be a whole number >= 10, got 5"),
        ("simulation.sizes", [60, 60], "simulation.sizes lists a value twice: [60, 60]"),
        ("simulation.vocabulary_icc", 1, "simulation.vocabulary_icc must be a number from 0 to below 1, got 1"),
        ("simulation.conditions", {"weak": [0.2, 0.3]}, "simulation.conditions must include 'strong'"),
        ("simulation.conditions", {"strong": [0.8, 0.4]}, "simulation.conditions.strong must be (low, high)"),
        ("simulation.conditions", {"strong": [0.4, 1.2]}, "simulation.conditions.strong[1] must be a number above 0"),
        (
            "human_values.min_indicators",
            5,
            "human_values.min_indicators (5) must be at most human_values.max_indicators",
        ),
        ("human_values.null_quantile", 0, "human_values.null_quantile must be a number above 0 and below 1, got 0"),
        ("figure1.words_per_subdimension", 0, "figure1.words_per_subdimension must be a whole number >= 1, got 0"),
        ("elicitation.max_models", 0, "elicitation.max_models must be a whole number >= 1 or null, got 0"),
        ("lexicon.synonym_threshold", 0, "lexicon.synonym_threshold must be a number above 0 and at most 1"),
        ("simulation.n_jobs", 0, "simulation.n_jobs must be a whole number >= 1 or -1, got 0"),
    ],
)
def test_every_setting_has_its_range(tmp_path: Path, setting: str, value, message: str):
    """Out of range in a run file: one line naming the file; the same value by --set: blamed on the --set."""
    section, name = setting.split(".")
    import yaml

    path = _run_file(tmp_path, yaml.safe_dump({section: {name: value}}))
    with pytest.raises(ConfigError) as err:
        load_run(path)
    assert str(err.value) == f"{path}: {message}" or (
        str(err.value).startswith(f"{path}: ") and message in str(err.value)
    )
    with pytest.raises(ConfigError) as err:
        load_run("default", {setting: value})
    assert str(err.value).startswith(f"--set {setting}=") and message in str(err.value)


def test_every_numeric_setting_declares_its_range():
    """A new number setting without a range would be accepted however absurd: each one says its range."""

    def bare_number(hint) -> bool:
        if get_origin(hint) is Annotated:
            return False
        if get_origin(hint) in (typing.Union, types.UnionType):
            return any(bare_number(a) for a in get_args(hint))
        if get_origin(hint) is tuple:
            return any(bare_number(a) for a in get_args(hint) if a is not Ellipsis)
        if get_origin(hint) is dict:
            return bare_number(get_args(hint)[1])
        return hint in (int, float)

    missing = [
        f"{section}.{name}"
        for section, cls in STAGES.items()
        for name, hint in typing.get_type_hints(cls, include_extras=True).items()
        if bare_number(hint)
    ]
    assert missing == []


def test_a_cross_field_mistake_is_blamed_on_the_set_that_made_it(tmp_path: Path):
    path = _run_file(tmp_path, "semantic: {k_max: 4}\n")
    with pytest.raises(ConfigError, match=r"^--set semantic.k_min=6: semantic.k_min \(6\) must be at most"):
        load_run(path, {"semantic.k_min": 6})
    with pytest.raises(ConfigError, match=rf"^{path}: semantic.k_min \(6\) must be at most"):
        load_run(_run_file(tmp_path, "semantic: {k_max: 4, k_min: 6}\n"))


@pytest.mark.parametrize("word", ["no", "yes", "off", "on", "n", "y", "No"])
def test_yaml_1_1_booleans_are_refused_not_guessed(tmp_path: Path, word: str):
    """PyYAML reads `no` as false: `use_system_prompt: no` would silently turn the system prompt off."""
    path = _run_file(tmp_path, f"elicitation:\n  use_system_prompt: {word}\n")
    with pytest.raises(ConfigError) as err:
        load_run(path)
    assert f"elicitation.use_system_prompt must be true or false, got {word!r}" in str(err.value)
    assert "yes/no/on/off are not read as booleans" in str(err.value)
    with pytest.raises(ConfigError, match="--set elicitation.use_system_prompt="):
        load_run("default", dict([parse_override(f"elicitation.use_system_prompt={word}")]))
    for true in ("true", "True", "TRUE"):
        assert load_run(
            _run_file(tmp_path, f"elicitation:\n  use_system_prompt: {true}\n")
        ).elicitation.use_system_prompt


def test_a_setting_given_twice_is_an_error():
    with pytest.raises(ConfigError, match=r"--set efa.n_boot is given twice \(5 and 6\): give each setting once"):
        parse_overrides(["efa.n_boot=5", "efa.n_boot=6"])
    assert parse_overrides(["efa.n_boot=5", "efa.seed=6"]) == {"efa.n_boot": 5, "efa.seed": 6}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"projective.judge": "nosuchjudge"}, "projective.judge names 'nosuchjudge', but there is no model card"),
        ({"projective.judge": "qwen2.5-coder-1.5b-instruc"}, "did you mean 'qwen2.5-coder-1.5b-instruct'?"),
        ({"elicitation.panel": "no-such-panel"}, "elicitation.panel names 'no-such-panel', but there is no"),
        ({"projective.panel": "configs/panels/nope.yaml"}, "projective.panel names 'configs/panels/nope.yaml'"),
        ({"projective.stem_ids": ["c01", "zz"]}, "projective.stem_ids names 'zz', which is not a stem of"),
        ({"semantic.template": "word"}, "semantic.template must be one of bare"),
        ({"semantic.model_dir": "README.md"}, "semantic.model_dir must be a sentence-transformers folder"),
    ],
)
def test_references_to_other_files_are_checked_when_the_run_is_read(override, message):
    """Before: `projective: {judge: nosuchjudge}` ended `valuelex plan` in a KeyError traceback."""
    with pytest.raises(ConfigError) as err:
        load_run("default", override)
    assert message in str(err.value) and str(err.value).startswith("--set ")


def test_a_panel_path_is_made_absolute_for_the_notebooks():
    """Notebooks run with notebooks/ as their working folder: a panel path relative to the project still works."""
    run = load_run("default", {"elicitation.panel": "configs/panels/local.yaml"})
    assert run.elicitation.panel == str((paths.PANELS / "local.yaml").resolve())


def test_missing_run_file_lists_the_known_runs():
    with pytest.raises(ConfigError, match=r"run file not found \(runs in .*: default, paper"):
        load_run("no-such-run")


def test_bad_yaml_names_the_line(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("efa:\n  n_factors: [3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad.yaml: not valid YAML at line \d"):
        load_run(bad)


def test_override_syntax():
    assert parse_override("efa.rotation=promax") == ("efa.rotation", "promax")
    assert parse_override("projective.stem_ids=[a, b]") == ("projective.stem_ids", ["a", "b"])
    assert parse_override("elicitation.use_system_prompt=no") == ("elicitation.use_system_prompt", "no")
    with pytest.raises(ConfigError, match="must look like section.setting=value"):
        parse_override("efa.rotation")


def test_every_stage_setting_has_a_default_and_the_report_lists_it():
    text = str(RunSettings())
    for section, cls in STAGES.items():
        assert f"\n{section}\n" in text
        for f in dataclasses.fields(cls):
            assert f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
            assert f.name in text
            STAGES[section]()  # every default is within its own range
            settings.build(cls, {f.name: getattr(cls(), f.name)}, "defaults", section=section)


def test_the_paper_run_is_committed_and_reads():
    run = load_run("paper")
    assert run.mode == "live" and not run.committed and run.output_dir == paths.ROOT / "runs" / "paper"
    assert run.elicitation.panel == "paper" and run.projective.panel == "paper"
