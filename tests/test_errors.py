"""One-line errors and exit codes for every entry point (valuelex.core.errors)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from valuelex.app.pipeline import notebook_error, user_error_names
from valuelex.core.errors import ConfigError, RunFailed, UserError, run_main
from valuelex.llm.cards import MissingKeyError
from valuelex.llm.runner import AllCallsFailed
from valuelex.llm.store import StoreBusy, StoreMiss


def test_run_main_turns_user_errors_into_one_line_and_exit_code_2(capsys):
    def main(argv):
        raise ConfigError("configs/panels/x.yaml: field 'models' must list at least one model")

    assert run_main(main, []) == 2
    assert capsys.readouterr().err == "error: configs/panels/x.yaml: field 'models' must list at least one model\n"


def test_a_failed_run_exits_1_and_a_bug_keeps_its_traceback(capsys):
    def failed(argv):
        raise AllCallsFailed("every one of the 3 requests of this live run failed")

    assert run_main(failed, []) == 1
    assert capsys.readouterr().err == "error: every one of the 3 requests of this live run failed\n"

    def buggy(argv):
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        run_main(buggy, [])

    def interrupted(argv):
        raise KeyboardInterrupt

    assert run_main(interrupted, []) == 130
    assert run_main(lambda argv: None, []) == 0 and run_main(lambda argv: 3, []) == 3


def test_every_mistake_a_user_can_fix_is_a_user_error():
    for cls in (ConfigError, MissingKeyError, StoreBusy, StoreMiss):
        assert issubclass(cls, UserError)
    assert issubclass(AllCallsFailed, RunFailed) and not issubclass(AllCallsFailed, UserError)
    names = user_error_names()
    assert {
        "ConfigError",
        "MissingKeyError",
        "MalformedKeyError",
        "StoreBusy",
        "StoreMiss",
        "NotebookInputError",
    } <= names
    assert "AllCallsFailed" not in names and "KeyError" not in names


def _executed(tmp_path: Path, outputs: list[dict]) -> Path:
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"cells": [{"cell_type": "code", "source": "", "outputs": outputs}]}))
    return path


def test_notebook_error_reads_the_error_of_an_executed_notebook(tmp_path: Path):
    error = {"output_type": "error", "ename": "ConfigError", "evalue": "x.yaml: bad", "traceback": ["..."]}
    assert notebook_error(_executed(tmp_path, [{"output_type": "stream", "text": "hi"}, error])) == (
        "ConfigError: x.yaml: bad",
        2,
    )
    bug = {"output_type": "error", "ename": "ZeroDivisionError", "evalue": "division by zero", "traceback": []}
    assert notebook_error(_executed(tmp_path, [bug])) == ("ZeroDivisionError: division by zero", 1)
    assert notebook_error(_executed(tmp_path, [])) == ("the notebook stopped without an error output (see its log)", 1)
    assert notebook_error(tmp_path / "missing.ipynb") == ("the notebook did not start (see its log)", 1)
