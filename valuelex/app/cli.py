"""``valuelex``: one command for everything a user does with a run.

    valuelex run [RUN] [--only 03] [--from 04] [-s efa.n_factors=3] [--yes] [--retry-failed|-damaged|-lost]
    valuelex plan [RUN]          what a live run would call, and its cost (nothing is called)
    valuelex check [RUN | --all] can the models the run would call be reached? (free; a replay run calls none)
    valuelex settings [RUN]      every setting of a run, resolved
    valuelex status [RUN]        which notebooks' outputs are stale
    valuelex verify [--ref REF]  regenerated tables against the committed ones, under tolerances
    valuelex adopt RUN           add a run's own stored answers to the dataset data/raw/
    valuelex scorer-eval ...     validate a projective-test scorer on labelled completions
    valuelex install-models [CARD ...]   install and verify the local GGUF models

RUN is a run file: a name under ``configs/runs/`` (default: ``default``) or a path. A mistake in
a configuration file or an argument is reported in one line naming the file (or the --set) and
the field, exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .. import __version__
from ..core import paths

EXIT_USAGE = 2


def _overrides(pairs: Sequence[str]) -> dict[str, Any]:
    from ..settings import parse_overrides

    return parse_overrides(list(pairs))


def _load(args: argparse.Namespace):
    from ..settings import load_run

    return load_run(args.run, _overrides(getattr(args, "set", []) or []))


def cmd_settings(args: argparse.Namespace) -> int:
    print(_load(args))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from . import pipeline

    run = _load(args)
    folders = pipeline.Folders.of(run)
    names = [nb.stem for nb in pipeline.notebooks()]
    why = pipeline.stale(pipeline.read_state(folders), pipeline.settings_digest(run), names)
    for name in names:
        print(f"{name:28s} {'stale: ' + why[name] if name in why else 'up to date'}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from . import preflight

    if args.all:
        from ..llm.cards import load_model_cards

        cards = list(load_model_cards().values())
    else:
        run = _load(args)
        cards = preflight.cards_to_check(run)
        if not cards:
            print(preflight.nothing_to_check(run))
            return 0
    result = preflight.check(cards, timeout_s=args.timeout)
    print(result)
    return 0 if result.ready else 1


def _retry(args: argparse.Namespace) -> None:
    """``--retry-failed/-damaged/-lost``: the requests a live run asks again, for this process and its notebooks."""
    from ..llm.runner import RETRY_ENV, retry_choices

    chosen = retry_choices() | {c for c in ("failed", "damaged", "lost") if getattr(args, f"retry_{c}", False)}
    if chosen:
        os.environ[RETRY_ENV] = ",".join(sorted(chosen))


def _report_store_damage(run) -> None:
    """Print, before anything runs, every damaged line of the run's response stores (not only inside notebooks)."""
    from ..llm.store import ResponseStore

    raw = run.raw_dir
    if raw.is_dir():
        for folder in sorted(p for p in raw.iterdir() if p.is_dir() and not p.name.startswith(".")):
            ResponseStore(folder)  # announces its load issues on stderr


def cmd_plan(args: argparse.Namespace) -> int:
    from .plan import plan_run

    _retry(args)
    print(plan_run(_load(args)))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from . import pipeline

    run = _load(args)
    _retry(args)
    say = _say
    pipeline.select(pipeline.notebooks(), args.only, args.start)  # a wrong selection stops before anything runs
    if run.mode != "live":  # a live run's plan loads (and reports) its stores
        _report_store_damage(run)
    if run.mode == "live":
        from .plan import confirm_live, plan_run, require_ready

        plan = plan_run(run)
        print(plan, flush=True)
        require_ready(plan)  # a model the run needs is not installed, or its key is not set: nothing is called
        if not confirm_live(plan, assume_yes=args.yes):
            say("live run not started (nothing was called)")
            return 1
    say(_destination(run))
    overrides = _overrides(args.set or [])
    outcome = pipeline.run_notebooks(run, overrides, args.only, args.start, say=say)
    pipeline.finish(run, outcome, say=say, overrides=overrides)
    if run.writes_committed_outputs:  # the committed outputs were regenerated: are they the same?
        from .verify import VerifyError, verify

        try:
            result = verify(figures_dir=outcome.folders.figures, processed_dir=outcome.folders.processed)
        except VerifyError as error:
            say(f"verify skipped: {error}")
            return 0
        print(result.text(), flush=True)
        return 0 if result.passed else 1
    return 0


def _destination(run) -> str:
    """Where a run writes, in one line."""
    from ..settings import shown

    if run.writes_committed_outputs:
        return "the committed run: data/processed/ and figures/ regenerated from data/raw/ (replay)"
    base = f" over the read-only {shown(run.base_dir)}/" if run.base_dir else ""
    return f"run {run.name!r} writes to {shown(run.output_dir)}/; its answers are stored in {shown(run.raw_dir)}/{base}"


def cmd_verify(args: argparse.Namespace) -> int:
    from ..settings import load_run
    from ..stages import Folders
    from .verify import VerifyError, verify

    folders = Folders.of(load_run())  # the committed run's folders (a test may move them)
    try:
        result = verify(ref=args.ref, figures_dir=folders.figures, processed_dir=folders.processed)
    except VerifyError as error:
        print(f"valuelex verify: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(result.text())
    return 0 if result.passed else 1


def cmd_adopt(args: argparse.Namespace) -> int:
    from ..llm.runstore import adopt

    adopt(_load(args), say=_say)
    return 0


def cmd_scorer_eval(args: argparse.Namespace) -> int:
    from . import scorer_eval

    return scorer_eval.main(args.rest)


def cmd_install_models(args: argparse.Namespace) -> int:
    from ..llm import local as local_models

    return local_models.main(args.cards)


def _say(message: str) -> None:
    import time

    print(f"[valuelex {time.strftime('%H:%M:%S')}] {message}", flush=True)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="valuelex", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    top.add_argument("--version", action="version", version=f"valuelex {__version__}")
    sub = top.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def with_run(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("run", nargs="?", default="default", help="run file: a name under configs/runs/ or a path")
        p.add_argument(
            "-s", "--set", action="append", default=[], metavar="SECTION.SETTING=VALUE",
            help="override one setting of the run file (repeatable), e.g. -s efa.n_factors=3",
        )  # fmt: skip
        return p

    def with_retry(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        retry = {
            "failed": "ask again the requests given up after an attempt that may have been paid",
            "damaged": "ask again the requests whose only stored record is damaged",
            "lost": "ask again the calls sent by a run killed before their answer was stored",
        }
        for choice, text in retry.items():
            p.add_argument(f"--retry-{choice}", action="store_true", help=f"live mode: {text} (may pay twice)")
        return p

    p = with_retry(with_run(sub.add_parser("run", help="run the notebooks of a run (replay, or live after a plan)")))
    p.add_argument("--only", nargs="+", metavar="NN", help="only these notebooks (by number or name prefix)")
    p.add_argument("--from", dest="start", metavar="NN", help="start at this notebook")
    p.add_argument("--yes", action="store_true", help="live mode: do not ask before paying for calls")
    p.set_defaults(func=cmd_run)
    p = with_retry(with_run(sub.add_parser("plan", help="the calls and cost a live run would make (calls nothing)")))
    p.set_defaults(func=cmd_plan)
    p = with_run(sub.add_parser("check", help="preflight: which models can be reached (free)"))
    p.add_argument("--all", action="store_true", help="every model card, not only the run's")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per endpoint")
    p.set_defaults(func=cmd_check)
    with_run(sub.add_parser("settings", help="print every setting of a run")).set_defaults(func=cmd_settings)
    with_run(sub.add_parser("status", help="which notebooks' outputs are stale")).set_defaults(func=cmd_status)
    p = sub.add_parser("verify", help="compare regenerated tables with the committed ones")
    p.add_argument("--ref", default="HEAD", help="the git commit holding the committed tables (default: HEAD)")
    p.set_defaults(func=cmd_verify)
    p = sub.add_parser("adopt", help="add a run's own stored answers to the dataset data/raw/")
    p.add_argument("run", help="run file: a name under configs/runs/ or a path")
    p.set_defaults(func=cmd_adopt, set=[])
    p = sub.add_parser("scorer-eval", help="validate a projective-test scorer", add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_scorer_eval)
    p = sub.add_parser("install-models", help="install and verify the local GGUF models")
    p.add_argument("cards", nargs="*", help="model card names (default: every local card)")
    p.set_defaults(func=cmd_install_models)
    return top


def guarded(func: Callable[[], int]) -> int:
    """Run ``func``; a user's mistake becomes one line on stderr and exit code 2, never a traceback."""
    from ..core.errors import RunFailed, UserError
    from .pipeline import RunInterrupted

    try:
        return func()
    except (UserError, RunFailed, RunInterrupted) as exc:  # UserError: exit 2; a failed or stopped run: 1, 130, 143
        print(f"valuelex: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("valuelex: interrupted", file=sys.stderr)
        return 130


#: Subcommands whose arguments go to another module's own parser, as they are (``--help`` included).
PASSED_ON = ("scorer-eval",)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in PASSED_ON:  # argparse's REMAINDER would not take a leading --option
        args = argparse.Namespace(command=argv[0], rest=argv[1:], func=cmd_scorer_eval)
    else:
        args = parser().parse_args(argv)
    if args.command == "run":
        from ..core.process import tie_to_launcher

        tie_to_launcher()  # started by run_all.sh: a TERM when the script dies, also by SIGKILL
    if not paths.is_project():
        print(
            f"valuelex: {paths.ROOT} is not a ValueLex project folder (no configs/panels/): "
            "cd into one or set VALUELEX_PROJECT",
            file=sys.stderr,
        )
        return EXIT_USAGE
    return guarded(lambda: args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
