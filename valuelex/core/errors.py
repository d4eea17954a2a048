"""Mistakes a user can fix, and the one place that turns them into a one-line message and an exit code.

This module imports nothing of ValueLex's: every layer may raise its errors.

A ``UserError`` (a malformed config file, a wrong parameter, a missing key, a store in use by
another run) is not a bug: an entry point shows its message on one line, without a traceback,
and exits with code 2. A ``RunFailed`` (the run went through but produced nothing usable, such
as a live run in which every call failed) exits with code 1. Anything else is a bug and keeps
its traceback. Entry points wrap their ``main`` with ``run_main``::

    if __name__ == "__main__":
        raise SystemExit(run_main(main))
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

EXIT_FAILED = 1  # the run failed (nothing usable came out of it)
EXIT_USAGE = 2  # a mistake in the input: fix it and run again
EXIT_INTERRUPTED = 130  # Ctrl-C


class UserError(Exception):
    """A mistake in the input that the user can fix; its message says where and what."""

    exit_code = EXIT_USAGE


class ConfigError(UserError, ValueError):
    """A configuration file or setting is malformed; the message names the file and the field."""


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
