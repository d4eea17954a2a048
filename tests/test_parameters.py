"""Notebook parameters from the command line: names checked against the notebooks, values converted to their types."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from valuelex import paths
from valuelex.parameters import Parameter, ParameterError, convert, main, notebook_parameters, resolve


def P(default, allowed=None) -> Parameter:  # noqa: N802 - a short constructor for the tables below
    return Parameter("01_x", "p", default, allowed)


@pytest.mark.parametrize(
    ("param", "given", "expected"),
    [
        (P(True), "false", False),
        (P(True), "False", False),
        (P(False), "yes", True),
        (P(False), "1", True),
        (P(3), "7", 7),
        (P(3), "7.0", 7),
        (P(0.3), "0.25", 0.25),
        (P(0.3), "1", 1),
        (P("local"), "paper", "paper"),
        (P("parallel"), "4", 4),  # a string default that also takes a number (n_factors)
        (P("x"), "true", "true"),  # text stays text
        (P(None), "[c01, c02]", ["c01", "c02"]),
        (P(None), "none", None),
        (P(None), "3", 3),
        (P(None, (int, type(None))), "null", None),
        (P(None, (int, type(None))), "2", 2),
        (P(["a"]), "[b]", ["b"]),
        (P(True), False, False),  # a YAML value keeps its type
        (P(0.3), 1, 1),
    ],
)
def test_values_are_converted_to_the_defaults_type(param: Parameter, given, expected):
    value = convert(param, given)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("param", "given", "message"),
    [
        (P(True), "maybe", "parameter 'p' of notebook 01_x takes true or false (default True), got 'maybe'"),
        (P(3), "abc", "parameter 'p' of notebook 01_x takes an integer (default 3), got 'abc'"),
        (P(3), "2.5", "parameter 'p' of notebook 01_x takes an integer (default 3), got 2.5"),
        (P(3), True, "parameter 'p' of notebook 01_x takes an integer (default 3), got True"),
        (P(0.3), "high", "parameter 'p' of notebook 01_x takes a number or an integer (default 0.3), got 'high'"),
        (
            P("local"),
            "[a]",
            "parameter 'p' of notebook 01_x takes text or an integer or a number (default 'local'), got ['a']",
        ),
        (
            P(None, (int, type(None))),
            "abc",
            "parameter 'p' of notebook 01_x takes an integer or None (default None), got 'abc'",
        ),
    ],
)
def test_values_of_the_wrong_type_are_refused(param: Parameter, given, message: str):
    with pytest.raises(ParameterError) as err:
        convert(param, given)
    assert str(err.value) == message


def _notebook(folder: Path, name: str, source: str) -> Path:
    path = folder / f"{name}.ipynb"
    cell = {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": source, "outputs": []}
    path.write_text(json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def test_parameters_cell_with_annotations(tmp_path: Path):
    nb = _notebook(
        tmp_path, "01_a", 'mode = "replay"\nmax_models: int | None = None\nn: float = 0.5\nx = f(1)\nimport os\n'
    )
    params = notebook_parameters(nb)
    assert set(params) == {"mode", "max_models", "n", "x"}
    assert params["max_models"].allowed == (int, type(None)) and params["max_models"].default is None
    assert params["n"].allowed == (float,) and params["mode"].allowed is None and params["x"].default is None
    assert notebook_parameters(_notebook(tmp_path, "02_b", "")) == {}


def test_resolve_gives_each_notebook_only_its_own_parameters(tmp_path: Path):
    a = _notebook(tmp_path, "01_a", "mode = 'replay'\nn = 1")
    b = _notebook(tmp_path, "02_b", "mode = 'replay'\nflag = True")
    out = resolve([a, b], [("mode", "live"), ("flag", "no")])
    assert out == {a: {"mode": "live"}, b: {"mode": "live", "flag": False}}
    assert resolve([a, b], [("n", "2")], only="01") == {a: {"n": 2}}
    with pytest.raises(
        ParameterError,
        match=r"^unknown parameter 'flag': no notebook to run takes it \(the notebook to run takes: mode, n\)$",
    ):
        resolve([a, b], [("flag", "no")], only="01")
    with pytest.raises(ParameterError, match=r"^--only 3 matches no notebook \(notebooks: 01_a, 02_b\)$"):
        resolve([a, b], [], only="3")
    with pytest.raises(ParameterError, match="^no notebooks found$"):
        resolve([], [])


def test_main_writes_one_file_per_notebook(tmp_path: Path, capsys):
    folder = tmp_path / "nbs"
    folder.mkdir()
    _notebook(folder, "01_a", "mode = 'replay'")
    _notebook(folder, "02_b", "n = 1")
    params_file = tmp_path / "p.yaml"
    params_file.write_text("n: 4\nmode: live\n")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "stale.yaml").write_text("x: 1")
    assert (
        main(["--notebooks", str(folder), "--out", str(tmp_path / "out"), "-f", str(params_file), "-p", "n", "5"]) == 0
    )
    assert capsys.readouterr().out.split() == [str(folder / "01_a.ipynb"), str(folder / "02_b.ipynb")]
    assert yaml.safe_load((tmp_path / "out" / "01_a.yaml").read_text()) == {"mode": "live"}
    assert yaml.safe_load((tmp_path / "out" / "02_b.yaml").read_text()) == {"n": 5}  # -p comes after the file
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["01_a.yaml", "02_b.yaml"]
    params_file.write_text("- a list\n")
    with pytest.raises(ParameterError, match="expected a mapping of fields at the top level"):
        main(["--notebooks", str(folder), "--out", str(tmp_path / "out"), "-f", str(params_file)])


def test_the_project_notebooks_parameters():
    params = notebook_parameters(paths.NOTEBOOKS / "01_elicitation.ipynb")
    assert params["use_system_prompt"].default is True and params["max_models"].allowed == (int, type(None))
    assert convert(params["use_system_prompt"], "false") is False
