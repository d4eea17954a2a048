"""README.md, read as a new user reads it: every path it names exists, and every command it shows is
real. The free ones (help, settings, plans, checks, status, verify) are run here and must exit 0 with
the output they promise; each costly one (a whole run, a live run, the set-up) is named with the test
that runs it, so that a command added to the README without a test fails here."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from valuelex.core import paths

README = (paths.ROOT / "README.md").read_text(encoding="utf-8")

#: Files and folders a run or the set-up makes (git-ignored), not in a fresh clone.
MADE_BY_A_RUN = ("build/", "runs/", ".venv", ".models/", "data/processed/run_manifest.json", "run_manifest.json")
#: Files the README's reader writes in "Adding a model" (tests/test_add_model.py writes them too).
WRITTEN_BY_THE_READER = (
    "configs/models/my-model.yaml",
    "configs/panels/mine.yaml",
    "configs/panels/mine_projective.yaml",
    "configs/runs/mine.yaml",
    "mine.yaml",
)
#: Placeholders the README uses in paths and commands.
PLACEHOLDER = re.compile(r"\b(NAME|RUN|FILE|CARD|COMMAND|REF|NN|PORT)\b")
#: Study folders of the dataset, named relative to data/raw/.
STUDIES = ("elicitation/", "projective/", "judge/")


def _code_spans() -> list[str]:
    """Every `inline code` span outside fenced blocks, and every line of a fenced block."""
    fenced = re.findall(r"```[a-z]*\n(.*?)```", README, flags=re.S)
    prose = re.sub(r"```[a-z]*\n.*?```", "", README, flags=re.S)
    lines = []
    for block in fenced:
        joined = re.sub(r"\\\n\s*", " ", block)  # continuation lines
        lines += [line.strip() for line in joined.splitlines() if line.strip()]
    return re.findall(r"`([^`\n]+)`", prose) + lines


def _path_like(token: str) -> bool:
    if " " in token or token.startswith(("-", "http", "{", "[")) or "=" in token or ":" in token:
        return False
    return "/" in token or bool(re.search(r"\.(py|md|yaml|yml|sh|ipynb|json|lock|csv|toml|txt|gguf)$", token))


def readme_paths() -> list[str]:
    spans = [s for s in _code_spans() if _path_like(s)]
    links = [t for t in re.findall(r"\]\(([^)\s]+)\)", README) if not t.startswith(("http", "#"))]
    return sorted(set(spans + links))


def _anchors(markdown: Path) -> set[str]:
    """The anchors GitHub makes of a Markdown file's headings: lower case, punctuation dropped, spaces to '-'."""
    headings = re.findall(r"^#+\s+(.+?)\s*$", markdown.read_text(encoding="utf-8"), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def test_every_path_the_readme_names_exists():
    tracked = subprocess.run(["git", "ls-files"], cwd=paths.ROOT, capture_output=True, text=True).stdout.split()
    names = {Path(t).name for t in tracked} | {f"{p}/" for t in tracked for p in Path(t).parent.parts}
    missing = []
    for token in readme_paths():
        if PLACEHOLDER.search(token) or token.startswith(MADE_BY_A_RUN) or token in WRITTEN_BY_THE_READER:
            continue
        if token.startswith("./"):
            token = token[2:]
        token, _, anchor = token.partition("#")
        if anchor and (paths.ROOT / token).is_file() and anchor not in _anchors(paths.ROOT / token):
            missing.append(f"{token}#{anchor}")  # the file is there, the section is not
        if token in STUDIES:
            token = f"data/raw/{token}"
        if "*" in token:
            if not list(paths.ROOT.glob(token)):
                missing.append(token)
        elif "/" in token.rstrip("/"):
            if not (paths.ROOT / token).exists():
                missing.append(token)
        elif not ((paths.ROOT / token).exists() or token in names):
            missing.append(token)  # a bare file name: some tracked file has it
    assert missing == []
    assert len(readme_paths()) > 40  # the extraction found the README's paths


# ------------------------------------------------------------------------------------------
# Commands
# ------------------------------------------------------------------------------------------
COMMAND_START = re.compile(
    r"^(?:time |env \S+ )?(\.venv/bin/valuelex|valuelex|\./run_all\.sh|\./run_tests\.sh|\.venv/bin/python|python|"
    r"\.venv/bin/jupyter|pip|git|cp|du)(?=\s)"
)

#: Commands that cost minutes or money, and the test that runs each (prefix of the command -> test).
COVERED = {
    "valuelex run mine": "tests/test_add_model.py::test_a_researcher_adds_a_model_as_the_readme_says",
    "valuelex plan mine": "tests/test_add_model.py::test_a_researcher_adds_a_model_as_the_readme_says",
    "valuelex check mine": "tests/test_add_model.py::test_a_researcher_adds_a_model_as_the_readme_says",
    "valuelex adopt": "tests/test_runstore.py (adopt into a scratch dataset; never on the committed one)",
    "valuelex run --set simulation.": "the finer simulation run (about an hour): measured, not tested",
    "valuelex run": "tests/test_cli.py::test_the_default_run_with_a_set_never_writes_the_committed_outputs, "
    "tests/test_run_all.py (selection, --set, signals)",
    "python -m valuelex.simulated recover": "tests/test_simulated_rehearsal.py (the report of rehearsal_small)",
    "valuelex scorer-eval": "tests/test_scorer_eval.py (live on the lab's cases: measured, not tested)",
    "./run_all.sh --setup-only": "./run_tests.sh and CI run it first",
    "./run_all.sh": "tests/test_run_all.py; CI's replay of the default run (tests/test_verify.py)",
    "./run_tests.sh": "CI (.ci/run)",
    "time ./run_all.sh": "the measurement quoted in the README",
    "python -m llama_cpp.server": "tests/test_add_model.py::test_a_researcher_adds_a_model_as_the_readme_says",
    "python -m pytest": "the test suite itself",
    "jupyter lab": "interactive; the kernel it uses is tested by tests/test_install.py",
    "pip install": "run_all.sh's set-up (tests/test_install.py)",
    "git add": "tests/test_add_model.py::test_a_researcher_adds_a_model_as_the_readme_says",
    "git status": "tests/test_add_model.py::test_a_researcher_adds_a_model_as_the_readme_says",
    "cp ": "tests/test_add_model.py::test_a_researcher_adds_a_model_as_the_readme_says",
    "du -sh": "the measurement quoted in the README",
}

#: The free commands, as the README shows them, and what their output must say.
FREE_OUTPUT = {
    "valuelex --help": "valuelex verify",
    "valuelex --version": "valuelex 0.1.0",
    "valuelex settings": "Run 'default' (replay)",
    "valuelex plan": "Plan: the calls a live run would make (nothing has been called)",
    "valuelex check": "nothing to check",
    "valuelex status": "01_elicitation",
    "valuelex verify": "verdict: reproduced",
    "valuelex plan paper": "74,448",
    "valuelex settings --set efa.n_factors=3": "runs/default-changed",
    "python -m valuelex": "valuelex",
}


def _normalise(line: str) -> str | None:
    """A README command as `valuelex ...` (or the script), comments and optional [arguments] removed."""
    line = line.split("  #", 1)[0].split(" # ", 1)[0].strip()
    if not COMMAND_START.match(line):
        return None
    line = re.sub(r"^\.venv/bin/(valuelex|python|jupyter)", r"\1", line)
    line = re.sub(r"\s*\[[^\]]*\]", "", line)  # optional parts: [RUN], [--yes], ...
    return re.sub(r"\s+", " ", line).strip()


def readme_commands() -> list[str]:
    found = (_normalise(span) for span in _code_spans())
    return sorted({c for c in found if c})


def _covered(command: str) -> str | None:
    return next((why for prefix, why in COVERED.items() if command.startswith(prefix)), None)


def _free(command: str) -> bool:
    words = command.split()
    if command in FREE_OUTPUT or "--help" in words:
        return True
    return words[0] == "valuelex" and len(words) > 1 and words[1] in ("settings", "plan", "check", "status", "verify")


def test_every_command_is_run_here_or_by_a_named_test():
    commands = readme_commands()
    assert "valuelex plan paper" in commands and "valuelex check mine" in commands  # the extraction works
    unknown = [c for c in commands if not _free(c) and _covered(c) is None]
    assert unknown == [], "README commands that no test runs: classify them in COVERED or make them free"
    for why in {_covered(c) for c in commands if not _free(c)}:
        for test in re.findall(r"tests/test_\w+\.py", why or ""):
            assert (paths.ROOT / test).exists(), test


@pytest.mark.parametrize("command", [c for c in readme_commands() if _free(c) and "mine" not in c.split()])
def test_every_free_command_of_the_readme_works(command: str):
    words = shlex.split(command)
    if words[0] == "valuelex":
        argv = [sys.executable, "-m", "valuelex", *words[1:]]
    elif words[:2] == ["python", "-m"]:
        argv = [sys.executable, *words[1:], *([] if len(words) > 3 else ["--version"])]
    else:
        pytest.fail(f"no rule to run {command!r}")
    out = subprocess.run(argv, cwd=paths.ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f"{command}: exit {out.returncode}\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}"
    assert "Traceback" not in out.stdout + out.stderr
    expected = FREE_OUTPUT.get(command) or ("usage: valuelex" if "--help" in words else "")
    assert expected in out.stdout, f"{command}: {expected!r} not in\n{out.stdout[:2000]}"


def test_the_free_commands_cover_the_command_list():
    """The command list of "A run, its settings and the valuelex command" is run here, each line of it."""
    section = README.split("## A run, its settings and the `valuelex` command", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S).group(1)  # type: ignore[union-attr]
    listed = [_normalise(line) for line in block.splitlines() if line.strip()]
    assert {"valuelex settings", "valuelex plan", "valuelex check", "valuelex status", "valuelex verify"} <= set(listed)
    free = [c for c in readme_commands() if _free(c)]
    assert all(c in free or _covered(c) for c in listed if c)
