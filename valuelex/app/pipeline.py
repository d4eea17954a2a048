"""Running the notebooks of a run, in order, through papermill: ``valuelex run``.

Each notebook receives the run file as its one parameter (plus overrides). It runs as a child
process in a process group of its own, so that Ctrl-C or a TERM to ``valuelex run`` stops the
notebook's kernel too (no orphan keeps calling models or writing outputs). A SIGKILL cannot be
caught, so each process of the tree also dies with its parent (Linux's ``PR_SET_PDEATHSIG``):
papermill when ``valuelex`` dies, the notebook's kernel when papermill dies (``tie_kernel``,
called by ``stages.start``), and ``valuelex`` itself when ``run_all.sh`` dies
(``VALUELEX_PARENT_PID``). A state file in the run's build folder remembers when each notebook
last ran with which settings, so that after a partial run (``--only 01``) the notebooks whose
inputs changed are reported as **stale**.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from .. import stages
from ..core import paths, process
from ..core.errors import EXIT_FAILED, EXIT_USAGE, ConfigError, RunFailed, UserError
from ..settings import RunSettings
from ..stages import Folders

KERNEL = "valuelex"
#: Environment every notebook runs in: semopy's results depend on the hash seed; no model hub.
NOTEBOOK_ENV = {"PYTHONHASHSEED": "0", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


class RunInterrupted(RuntimeError):
    """The run was stopped by a signal; the running notebook and its kernel were stopped too."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum  # 130 for Ctrl-C, 143 for SIGTERM, as a shell reports them


class NotebookFailed(RunFailed):
    """A notebook raised (a bug or a failed computation); the message names it, its log and its last lines."""


class NotebookInputError(UserError):
    """A notebook stopped on a mistake in the input (a config file, a setting, a key): one line says which."""


def user_error_names() -> set[str]:
    """Class names of every UserError defined in valuelex (to recognise one in an executed notebook)."""
    from ..llm import cards, runner, runstore, store  # noqa: F401 - importing defines their error classes

    names, todo = set(), [UserError]
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


def notebooks(folder: Path | None = None) -> list[Path]:
    """The pipeline's notebooks (``NN_name.ipynb``), in order."""
    return sorted(Path(folder or paths.NOTEBOOKS).glob("[0-9][0-9]_*.ipynb"))


def _matching(all_notebooks: list[Path], option: str, value: str) -> list[Path]:
    """The notebooks ``value`` names: a number (``3`` or ``03``) or the start of a name (``03_e``); a value
    that names several (``0``) is a mistake, not a way to select them all."""
    wanted = value.zfill(2) if value.isdigit() and len(value) == 1 else value
    found = [nb for nb in all_notebooks if nb.stem.startswith(wanted)]
    names = ", ".join(nb.stem for nb in all_notebooks)
    if not found:
        raise ConfigError(f"{option} {value}: no notebook starts with it (notebooks: {names})")
    if len(found) > 1:
        raise ConfigError(
            f"{option} {value}: names {len(found)} notebooks ({', '.join(nb.stem for nb in found)}); "
            "give each by its number, e.g. 03"
        )
    return found


def select(all_notebooks: list[Path], only: list[str] | None = None, start: str | None = None) -> list[Path]:
    """The notebooks to run: those named by ``only`` (numbers or name starts), or from ``start`` on, or both.

    A value that names no notebook or several, or a selection that leaves nothing to run, is a ConfigError.
    """
    chosen = all_notebooks
    if only:
        named = {nb for value in only for nb in _matching(all_notebooks, "--only", value)}
        chosen = [nb for nb in all_notebooks if nb in named]
    if start:
        first = all_notebooks.index(_matching(all_notebooks, "--from", start)[0])
        chosen = [nb for nb in chosen if nb in all_notebooks[first:]]
    if not chosen and only and start:
        raise ConfigError(
            f"--only {' '.join(only)} --from {start}: selects no notebook (--from {start} starts after every --only one)"
        )
    if not chosen:
        raise ConfigError(f"no notebook to run in {paths.NOTEBOOKS}")
    return chosen


def settings_digest(run: RunSettings) -> str:
    """A short hash of everything a run's notebooks are given (to tell when a notebook's output is stale)."""
    text = json.dumps(run.metrics(), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------------
# Staleness
# ------------------------------------------------------------------------------------------
def _state_file(folders: Folders) -> Path:
    return folders.build / "state.json"


def read_state(folders: Folders) -> dict[str, dict]:
    try:
        return json.loads(_state_file(folders).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _write_state(folders: Folders, state: dict[str, dict]) -> None:
    folders.build.mkdir(parents=True, exist_ok=True)
    tmp = _state_file(folders).with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(_state_file(folders))


def stale(state: dict[str, dict], digest: str, names: list[str]) -> dict[str, str]:
    """Notebook -> why its outputs are stale (never ran, ran with other settings, or an input ran later)."""
    why: dict[str, str] = {}
    depends = stages.depends_on()  # which stages read what another wrote (their declarations)
    for name in names:
        number = name[:2]
        entry = state.get(name)
        if entry is None:
            why[name] = "never ran in this output folder"
            continue
        if entry.get("settings") != digest:
            why[name] = "ran with other settings"
            continue
        for dep in depends.get(number, ()):
            upstream = next((n for n in names if n.startswith(dep)), None)
            if upstream is None:
                continue
            if upstream in why:
                why[name] = f"its input {upstream} is stale"
                break
            if state.get(upstream, {}).get("finished", 0) > entry.get("finished", 0):
                why[name] = f"its input {upstream} ran after it"
                break
    return why


# ------------------------------------------------------------------------------------------
# Running one notebook
# ------------------------------------------------------------------------------------------
def kernel_name() -> str:
    """The project's Jupyter kernel when it is registered, else the default Python kernel."""
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        return KERNEL if KERNEL in KernelSpecManager().find_kernel_specs() else "python3"
    except Exception:  # noqa: BLE001 - no jupyter_client: papermill will say so
        return "python3"


def _papermill_command(notebook: Path, out: Path, run: RunSettings, overrides: dict[str, object]) -> list[str]:
    return [
        sys.executable, "-m", "papermill", str(notebook), str(out),
        "-k", kernel_name(), "--cwd", str(notebook.parent), "--log-level", "WARNING",
        "-p", "run", str(run.path), "-y", yaml.safe_dump({"overrides": overrides}),
    ]  # fmt: skip


def execute(notebook: Path, run: RunSettings, folders: Folders, overrides: dict[str, object]) -> float:
    """Run one notebook into the build folder; seconds taken. Stops its process group on a signal."""
    folders.build.mkdir(parents=True, exist_ok=True)
    (folders.build / "logs").mkdir(exist_ok=True)
    out = folders.build / notebook.name
    log = folders.build / "logs" / f"{notebook.stem}.log"
    env = {**os.environ, **NOTEBOOK_ENV, **folders.environment(), "VALUELEX_PROJECT": str(paths.ROOT)}
    env[process.TIE_KERNEL_ENV] = "1"
    me = os.getpid()
    prctl = process.libc_prctl()  # looked up before the fork: the child only calls it

    def die_with_me() -> None:  # in papermill's process, between fork and exec
        if prctl is not None:
            prctl(process.PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != me:  # valuelex died before the line above: do not run orphaned
            os._exit(1)

    started = time.monotonic()
    with open(log, "wb") as sink:
        child = subprocess.Popen(
            _papermill_command(notebook, out, run, overrides),
            stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True,
            preexec_fn=die_with_me,
        )  # fmt: skip
        received: list[int] = []

        def stop(signum: int, _frame: object) -> None:
            received.append(signum)
            _stop_group(child)

        previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            code = child.wait()
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            _stop_group(child)
    if received:
        raise RunInterrupted(f"stopped by signal {received[0]} while running {notebook.stem} (log: {log})", received[0])
    if code != 0:
        reason, exit_code = notebook_error(out)
        if exit_code == EXIT_USAGE:
            raise NotebookInputError(f"{notebook.stem}: {reason}")
        # one line: what stopped it; the traceback stays in the log and the executed copy
        if reason.startswith("the notebook"):  # papermill stopped before a cell ran: its log says why
            last = [line for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
            reason = f"{reason}: {last[-1].strip()}" if last else reason
        raise NotebookFailed(
            f"{notebook.stem} failed: {reason.splitlines()[0]} (traceback: {log}; executed copy: {out})"
        )
    return time.monotonic() - started


def _stop_group(child: subprocess.Popen, grace_s: float = 5.0) -> None:
    """TERM the child's process group (papermill), then KILL; its kernel, in a session of its own, dies with papermill."""
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 2.0)):
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            child.poll()  # reap the leader so that a finished group reads as gone
            if not _group_alive(child.pid):
                return
            time.sleep(0.05)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


# ------------------------------------------------------------------------------------------
# Running a selection
# ------------------------------------------------------------------------------------------
@dataclass
class RunOutcome:
    ran: list[tuple[str, float]]
    stale: dict[str, str]
    folders: Folders


def run_notebooks(
    run: RunSettings,
    overrides: dict[str, object] | None = None,
    only: list[str] | None = None,
    start: str | None = None,
    say=print,
) -> RunOutcome:
    """Run the selected notebooks of a run in order; stop at the first failure (with its name and log)."""
    folders = Folders.of(run)
    all_nbs = notebooks()
    chosen = select(all_nbs, only, start)
    digest = settings_digest(run)
    state = read_state(folders)
    ran = []
    for nb in chosen:
        say(f"running {nb.stem}")
        seconds = execute(nb, run, folders, overrides or {})
        state[nb.stem] = {"finished": time.time(), "settings": digest, "seconds": round(seconds, 1)}
        _write_state(folders, state)
        ran.append((nb.stem, seconds))
        say(f"done {nb.stem} in {seconds:.0f} s")
    timings = "".join(
        f"{name}\t{state[name]['seconds']:.0f}\n" for name in (nb.stem for nb in all_nbs) if name in state
    )
    (folders.build / "timings.tsv").write_text(timings, encoding="utf-8")
    return RunOutcome(ran, stale(state, digest, [nb.stem for nb in all_nbs]), folders)


def finish(run: RunSettings, outcome: RunOutcome, say=print, overrides: dict[str, object] | None = None) -> None:
    """After the notebooks: the HTML tutorial, the figure index, the manifest; then say what is stale."""
    from . import manifest, tutorial

    folders = outcome.folders
    seconds = {name: entry["seconds"] for name, entry in read_state(folders).items() if "seconds" in entry}
    index = tutorial.build(folders.build, folders.build / "html", seconds, folders.figures)
    manifest.write_figure_index(folders.figures)
    manifest.write_manifest(
        folders.processed / "run_manifest.json", folders.build, run, overrides, folders.raw, folders.base
    )
    say(f"tutorial: {index}")
    if outcome.stale:
        for name, why in outcome.stale.items():
            say(f"stale: {name} ({why})")
        first = min(outcome.stale)[:2]
        say(f"to bring every output up to date: {rerun_command(run, overrides)} --from {first}")


def rerun_command(run: RunSettings, overrides: dict[str, object] | None = None) -> str:
    """The ``valuelex run`` command of this run as given: its run file, and every --set again (without
    them the rerun would be another run, whose notebooks are "ran with other settings")."""
    import shlex

    from ..settings import RUNS

    where = run.path or Path(run.name)
    named = where.parent.resolve() == RUNS.resolve() and where.suffix == ".yaml"
    words = ["valuelex", "run", where.stem if named else str(where)]
    for key, value in (overrides or {}).items():
        text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("\n...").strip()
        words += ["--set", f"{key}={text}"]
    return shlex.join(words)
