"""Mistakes a user can fix, and the one place that turns them into a one-line message and an exit code.

A ``UserError`` (a malformed config file, a wrong parameter, a missing key, a store in use by
another run) is not a bug: an entry point shows its message on one line, without a traceback,
and exits with code 2. A ``RunFailed`` (the run went through but produced nothing usable, such
as a live run in which every call failed) exits with code 1. Anything else is a bug and keeps
its traceback. Entry points wrap their ``main`` with ``run_main``::

    if __name__ == "__main__":
        raise SystemExit(run_main(main))
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

EXIT_FAILED = 1  # the run failed (nothing usable came out of it)
EXIT_USAGE = 2  # a mistake in the input: fix it and run again
EXIT_INTERRUPTED = 130  # Ctrl-C


class UserError(Exception):
    """A mistake in the input that the user can fix; its message says where and what."""

    exit_code = EXIT_USAGE


class RunFailed(Exception):
    """The run went through but produced nothing usable; its message says why."""

    exit_code = EXIT_FAILED


def run_main(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> int:
    """Call ``main(argv)``; a UserError or RunFailed becomes one line on stderr and its exit code."""
    try:
        return int(main(argv) or 0)
    except (UserError, RunFailed) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED


def user_error_names() -> set[str]:
    """Class names of every UserError defined in valuelex (to recognise one in an executed notebook)."""
    from . import config, llm, pipeline, store  # noqa: F401 - importing defines their error classes
    from .errors import UserError as base  # the package's class, also when this file runs as __main__

    names, todo = set(), [base]
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return names


def notebook_error(executed: str | Path) -> tuple[str, int]:
    """(one line saying why an executed notebook stopped, exit code: 2 for a UserError, else 1)."""
    try:
        nb = json.loads(Path(executed).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "the notebook did not start (see its log)", EXIT_FAILED
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                ename, evalue = output.get("ename", "Error"), output.get("evalue", "")
                code = EXIT_USAGE if ename in user_error_names() else EXIT_FAILED
                return (f"{ename}: {evalue}" if evalue else ename), code
    return "the notebook stopped without an error output (see its log)", EXIT_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m valuelex.errors EXECUTED.ipynb``: print why a notebook stopped; exit 2 for a user error, else 1."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m valuelex.errors EXECUTED_NOTEBOOK.ipynb", file=sys.stderr)
        return EXIT_USAGE
    line, code = notebook_error(args[0])
    print(line)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
