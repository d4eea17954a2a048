"""Mutation testing of the LLM layer, the store and the parser: how strong are their tests, as a number.

    .venv/bin/python benchmarks/mutation_test.py                    # all three modules (about 2 hours on 2 cores)
    .venv/bin/python benchmarks/mutation_test.py --module store     # one module
    .venv/bin/python benchmarks/mutation_test.py --list --module parse
    .venv/bin/python benchmarks/mutation_test.py --pin-regex        # (re)write tests/data/parse_alternatives.yaml
    .venv/bin/python benchmarks/mutation_test.py --module llm --shuffle 19 --shard 0/3   # one of three parallel runs

A *mutant* is the module with one small change (our own AST mutator, no extra package): a comparison
flipped (``<`` to ``<=``, ``==`` to ``!=``, ``in`` to ``not in``), ``and``/``or`` swapped, a ``not``
dropped, an ``if`` negated, an arithmetic operator swapped, a number changed by one, a boolean
flipped, a string emptied, a call statement or ``continue``/``break`` deleted, a return value
replaced by ``None``, and, in ``parse.py``, one alternative of one regular expression dropped. Each
mutant runs the module's tests in a scratch copy of the project (``valuelex/`` and ``tests/``
copied, the rest linked); it is *killed* when a test fails or hangs. A surviving mutant is either a
gap in the tests or *equivalent* (it changes nothing observable); the equivalent ones we checked
by hand are listed in ``EQUIVALENT`` with the reason, and the score is killed / (mutants -
equivalent). Not part of the test command: it runs the suites hundreds of times.

``--pin-regex`` finds, for every alternative of every regular expression in ``parse.py``, a real
answer of the committed dataset (``data/raw/elicitation``) whose parse changes when that
alternative is dropped, and writes it with its parse to ``tests/data/parse_alternatives.yaml``;
``tests/test_parse.py`` checks each of them.
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.regex_alternatives import alternatives, drop_alternative, outcome, regex_alternatives, without  # noqa: E402

# module -> (fast tests run on every mutant, slower tests run on the mutants the fast ones leave alive;
# the llama.cpp tests skip themselves where llama-cpp-python or the SmolLM2 file is missing)
TESTS = {
    "store": (
        ["tests/test_store.py", "tests/test_llm.py", "tests/test_llm_properties.py"],
        ["tests/test_llm_faults.py", "tests/test_kill_resume.py"],
    ),
    "llm": (
        ["tests/test_llm.py", "tests/test_llm_properties.py", "tests/test_llm_faults.py"],
        ["tests/test_kill_resume.py", "tests/test_secrets.py", "tests/test_llm_llama.py"],
    ),
    "parse": (["tests/test_parse.py"], ["tests/test_elicit.py"]),
}
# the LLM client was one file (llm.py) until issue 21 split it: its parts share llm's tests
for _part in ("wire", "request", "limits"):
    TESTS[_part] = TESTS["llm"]
#: module name -> its file under valuelex/ ("llm" is the runner; mutant ids of functions now in wire/request/limits
#: that EQUIVALENT lists under "llm:" are to be re-keyed when those modules are next measured)
FILES = {
    "store": "llm/store.py",
    "llm": "llm/runner.py",
    "wire": "llm/wire.py",
    "request": "llm/request.py",
    "limits": "llm/limits.py",
    "parse": "parse.py",
}

# Mutants checked by hand that change nothing a caller can observe, with the reason. Keys are mutant ids
# (``--list`` prints them); they name the function and the change, not line numbers.
EQUIVALENT: dict[str, str] = {
    "store:LoadIssue.kind:1 -> 2 @ 1": "split(' (', 2)[0] is split(' (', 1)[0]",
    "store:_stored_request_matches:compare 0: Lt -> LtE @ start < 0": (
        "find() cannot return 0: a JSON object line starts with '{', not with ',\"request\":'"
    ),
    "store:_stored_request_matches:0 -> 1 @ 0": "find() is -1 or at least 1 here (see above)",
    "store:_stored_request_matches:compare 0: Gt -> GtE @ end > 0": ("find() from start > 0 is -1 or > start, never 0"),
    "store:_stored_request_matches:0 -> 1 @ 0 #2": "find() from start > 1 is -1 or > 1 (see above)",
    "store:ResponseStore._announce:True -> False @ True": "flush: stderr is not block-buffered; only timing differs",
    "store:<module>:4096 -> 4097 @ 4096": "the type-signature memo's cap: a store holds a few dozen signatures",
    "store:ResponseStore._add:compare 0: Gt -> GtE @ attempt > self._last_attempt.get(key, 0)": (
        "when attempt equals the last one, assigning it again changes nothing"
    ),
    "store:ResponseStore.append:1 -> 2 @ 1 #2": "pread of 2 bytes at the last byte returns that one byte",
    "store:ResponseStore.append:True -> False @ True #2": (
        "exist_ok matters only when another process creates the folder between our open() and mkdir(); "
        "not equivalent, but no deterministic test reaches that race (counted here, named in the report)"
    ),
    "store:ResponseStore._keep_final:return None instead of 'replaced'": (
        "only 'new' and 'duplicate' are counted; any other value means replaced"
    ),
    "store:ResponseStore._keep_final:'replaced' -> '' @ 'replaced'": "as above",
    "store:ResponseStore.run_lock:1000 -> 1001 @ 1000": (
        "the holder's line is under 400 bytes (a 200-character command, a host name, a pid and a time)"
    ),
    "store:ResponseStore.run_lock:0 -> 1 @ 0": "ftruncate to 1 byte, then the new line overwrites that byte",
    "llm:_run_coroutine:1 -> 2 @ 1": "the pool runs one coroutine; a second thread would stay idle",
    "llm:LLMRunner._call_model:10.0 -> 11.0 @ 10.0": (
        "the connect timeout for a host that never answers; not equivalent, but no deterministic test on "
        "loopback reaches it (counted here, named in the report)"
    ),
    "llm:LLMRunner._wait_before_retry:compare 0: Gt -> GtE @ asked > backoff": (
        "when the server asks for exactly the backoff, both branches wait that long"
    ),
    "store:validate_record:0 -> 1 @ 0 #2": "the fallback is for None and 0, neither of which is negative, nor is 1",
    "llm:LLMRunner._check_unanswered:True -> False @ True": (
        "zip(strict=False): the records are looked up from the same list of requests, so the lengths are equal"
    ),
    "llm:Redactor.__init__:6 -> 7 @ 6": "a longer reach redacts more bytes past the 64 KiB cut, which are dropped",
    "parse:_items:delete continue": (
        "an empty line that does not stop early splits into one empty piece, which the filter of the same loop drops"
    ),
    "parse:parse_responses:False -> True @ False": (
        "itertuples(index=True) adds an Index field in front; the loop reads the fields by name"
    ),
    "parse:_items:And -> Or @ p and p.strip()": (
        "a piece is never blank without being empty: the line is stripped, and the sentence and item splits "
        "consume the whitespace around every separator"
    ),
}


@dataclass
class Mutant:
    id: str
    line: int
    description: str
    source: str


# the AST mutator ------------------------------------------------------------------------------
_COMPARE_SWAPS = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
    ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is,
}  # fmt: skip
_BINOP_SWAPS = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Mult}
_RE_FUNCS = {"compile", "split", "sub", "search", "match", "fullmatch", "findall", "finditer"}


def _skipped_nodes(tree: ast.AST) -> set[int]:
    """Docstrings and the literal pieces of f-strings (messages: emptying one is a mutant of the wording only)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            out.update(id(v) for v in node.values if isinstance(v, ast.Constant))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                out.add(id(first))
                out.add(id(first.value))
    return out


def _regex_literals(tree: ast.AST) -> set[int]:
    """ids of string constants that are patterns given to a function of ``re``."""
    out = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "re"
            and node.func.attr in _RE_FUNCS
            and node.args
        ):
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                out.add(id(arg))
    return out


def _qualnames(tree: ast.AST) -> dict[int, str]:
    names: dict[int, str] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = prefix
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}.{child.name}" if prefix else child.name
            names[id(child)] = name or "<module>"
            visit(child, name)

    visit(tree, "")
    return names


def _short(node: ast.AST) -> str:
    text = ast.unparse(node).replace("\n", " ")
    return text if len(text) <= 70 else text[:67] + "..."


def mutants(path: Path) -> list[Mutant]:
    """Every mutant of one module, in source order, each with a stable id."""
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    docstrings, regexes, qualnames = _skipped_nodes(tree), _regex_literals(tree), _qualnames(tree)
    found: list[tuple[ast.AST, str, object]] = []  # (node, description, how to mutate)
    for node in ast.walk(tree):
        if id(node) in docstrings:
            continue
        if isinstance(node, ast.Compare):
            for k, op in enumerate(node.ops):
                if type(op) in _COMPARE_SWAPS:
                    found.append(
                        (node, f"compare {k}: {type(op).__name__} -> {_COMPARE_SWAPS[type(op)].__name__}", ("cmp", k))
                    )
        elif isinstance(node, ast.BoolOp):
            found.append(
                (node, f"{type(node.op).__name__} -> {'Or' if isinstance(node.op, ast.And) else 'And'}", ("bool",))
            )
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            found.append((node, "drop not", ("not",)))
        elif isinstance(node, ast.BinOp) and type(node.op) in _BINOP_SWAPS:
            found.append((node, f"{type(node.op).__name__} -> {_BINOP_SWAPS[type(node.op)].__name__}", ("binop",)))
        elif isinstance(node, (ast.If, ast.While)):
            found.append((node, "negate condition", ("negate",)))
        elif isinstance(node, ast.IfExp):
            found.append((node, "negate condition", ("negate",)))
        elif isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool):
                found.append((node, f"{value} -> {not value}", ("const", not value)))
            elif isinstance(value, int):
                found.append((node, f"{value} -> {value + 1}", ("const", value + 1)))
            elif isinstance(value, float):
                found.append((node, f"{value} -> {value + 1}", ("const", value + 1.0)))
            elif isinstance(value, str) and id(node) in regexes:
                for span in regex_alternatives(value):
                    alt = value[span[0] : span[1]]
                    found.append((node, f"regex drops alternative {alt!r}", ("regex", span)))
            elif isinstance(value, str) and value:
                found.append((node, f"{_short(node)} -> ''", ("const", "")))
        elif isinstance(node, ast.Expr) and isinstance(node.value, (ast.Call, ast.Await)):
            found.append((node, f"delete {_short(node)}", ("delete",)))
        elif isinstance(node, (ast.Continue, ast.Break)):
            found.append((node, f"delete {type(node).__name__.lower()}", ("delete",)))
        elif (
            isinstance(node, ast.Return)
            and node.value is not None
            and not (isinstance(node.value, ast.Constant) and node.value.value is None)
        ):
            found.append((node, f"return None instead of {_short(node.value)}", ("return_none",)))
    out: list[Mutant] = []
    seen: dict[str, int] = {}
    for node, description, how in found:
        mutated = _apply(tree, node, how)
        if mutated is None:
            continue
        where = qualnames.get(id(node), "<module>")
        base = f"{path.stem}:{where}:{description}"
        if how[0] not in ("regex",) and not description.startswith(("delete", "return None")):
            base += f" @ {_short(node)}"
        seen[base] = seen.get(base, 0) + 1
        mid = base if seen[base] == 1 else f"{base} #{seen[base]}"
        out.append(Mutant(mid, getattr(node, "lineno", 0), description, mutated))
    return sorted(out, key=lambda m: m.line)


def _apply(tree: ast.AST, target: ast.AST, how: tuple) -> str | None:
    """The module's source with one node changed (on a deep copy of the tree)."""
    index = {id(n): k for k, n in enumerate(ast.walk(tree))}[id(target)]
    clone = copy.deepcopy(tree)
    node = list(ast.walk(clone))[index]
    kind = how[0]
    if kind == "cmp":
        node.ops[how[1]] = _COMPARE_SWAPS[type(node.ops[how[1]])]()
    elif kind == "bool":
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif kind == "binop":
        node.op = _BINOP_SWAPS[type(node.op)]()
    elif kind == "const":
        node.value = how[1]
    elif kind == "regex":
        node.value = drop_alternative(node.value, how[1])
    elif kind == "not":
        _replace(clone, node, node.operand)
    elif kind == "negate":
        node.test = ast.UnaryOp(op=ast.Not(), operand=node.test)
    elif kind == "delete":
        _replace(clone, node, ast.Pass())
    elif kind == "return_none":
        node.value = ast.Constant(value=None)
    ast.fix_missing_locations(clone)
    try:
        return ast.unparse(clone)
    except Exception:  # noqa: BLE001 - a mutation the unparser cannot write is skipped
        return None


def _replace(tree: ast.AST, old: ast.AST, new: ast.AST) -> None:
    for parent in ast.walk(tree):
        for field, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, field, new)
                return
            if isinstance(value, list):
                for k, item in enumerate(value):
                    if item is old:
                        value[k] = new
                        return


# running the tests against a mutant --------------------------------------------------------
def scratch_project(folder: Path) -> Path:
    """A copy of the project in which valuelex/ and tests/ are real copies (mutated in place) and the rest links."""
    project = folder / "project"
    project.mkdir()
    for name in ("valuelex", "tests"):
        shutil.copytree(ROOT / name, project / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("configs", "data", "notebooks", ".venv", ".models", "pyproject.toml", "requirements.lock", "build"):
        if (ROOT / name).exists():
            (project / name).symlink_to((ROOT / name).resolve())
    return project


def run_tests(project: Path, tests: list[str], timeout_s: float, show: bool = False) -> str:
    """ "killed", "survived" or "timeout" (a hang counts as killed); ``show``: print a failing run's output."""
    env = {**os.environ, "PYTHONPATH": str(project), "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("CI", None)
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    try:
        run = subprocess.run(cmd, cwd=project, env=env, capture_output=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return "timeout"
    if show and run.returncode != 0:
        print(run.stdout.decode(errors="replace")[-3000:], file=sys.stderr)
    return "survived" if run.returncode == 0 else "killed"


def mutation_run(module: str, only: set[str] | None = None, workers_note: str = "", shuffle: int | None = None) -> dict:
    target = ROOT / "valuelex" / FILES[module]
    fast, slow = TESTS[module]
    all_mutants = mutants(target)
    if only:
        all_mutants = [m for m in all_mutants if m.id in only]
    if shuffle is not None:  # a random order: a run stopped early is a random sample, not the top of the file
        random.Random(shuffle).shuffle(all_mutants)
    with tempfile.TemporaryDirectory(prefix=f"mutants-{module}-") as tmp:
        project = scratch_project(Path(tmp))
        original = (project / "valuelex" / FILES[module]).read_text(encoding="utf-8")
        started = time.monotonic()
        if run_tests(project, fast + slow, 1800, show=True) != "survived":
            raise SystemExit(f"the tests of {module} fail without any mutation; fix them first")
        baseline = time.monotonic() - started
        timeout = 3 * baseline + 30
        results = {}
        for k, mutant in enumerate(all_mutants, start=1):
            (project / "valuelex" / FILES[module]).write_text(mutant.source, encoding="utf-8")
            outcome = run_tests(project, fast, timeout)
            if outcome == "survived":
                outcome = run_tests(project, slow, timeout)
            results[mutant.id] = outcome
            print(f"[{k}/{len(all_mutants)}] {outcome:8s} line {mutant.line}: {mutant.id}", flush=True)
        (project / "valuelex" / FILES[module]).write_text(original, encoding="utf-8")
    return {"module": module, "baseline_s": round(baseline, 1), "results": results}


def score(module: str, results: dict[str, str]) -> dict:
    # a mutant listed as equivalent counts as equivalent only when it survived (one killed, by a hang for
    # instance, is a kill): the score is never above 100%
    equivalent = {m for m, r in results.items() if m in EQUIVALENT and r == "survived"}
    survived = [m for m, r in results.items() if r == "survived" and m not in equivalent]
    killed = sum(r in ("killed", "timeout") for r in results.values())
    considered = len(results) - len(equivalent)
    regex = [m for m in results if "regex drops alternative" in m]
    regex_killed = sum(results[m] != "survived" for m in regex)
    return {
        "module": module,
        "mutants": len(results),
        "killed": killed,
        "equivalent": len(equivalent),
        "score_all": round(killed / len(results), 4) if results else None,
        "score_non_equivalent": round(killed / considered, 4) if considered else None,
        "regex_mutants": len(regex),
        "regex_killed": regex_killed,
        "survivors": survived,
    }


# pinning every regex alternative with a real answer --------------------------------------------
def real_answers() -> list[dict]:
    """Every stored answer text of the committed elicitation data (final or not), with its key."""
    from valuelex.llm.store import ResponseStore

    store = ResponseStore(ROOT / "data" / "raw" / "elicitation", announce=False)
    seen, out = set(), []
    for rec in store.records():
        text = rec.get("text")
        if (
            rec["status"] == "ok"
            and isinstance(text, str)
            and text.strip()
            and (text, rec.get("finish_reason")) not in seen
        ):
            seen.add((text, rec.get("finish_reason")))
            out.append(
                {
                    "store_key": rec["key"],
                    "model": rec["request"]["model"],
                    "prompt_id": rec["request"]["prompt_id"],
                    "truncated": rec.get("finish_reason") == "length",
                    "text": text,
                }
            )
    return out


def pin_regex(out_path: Path) -> list[str]:
    """Write one real answer per regex alternative; returns the alternatives no real answer exercises."""
    import yaml

    answers = real_answers()
    baseline = [outcome(a["text"], a["truncated"]) for a in answers]
    cases, unpinned = [], []
    for name, alt, span in alternatives():
        with without(name, span):
            differing = [
                (len(a["text"]), k) for k, a in enumerate(answers) if outcome(a["text"], a["truncated"]) != baseline[k]
            ]
        if not differing:
            unpinned.append(f"{name}: {alt}")
            continue
        k = min(differing)[1]
        cases.append({"regex": name, "alternative": alt, **answers[k], "expected": baseline[k]})
    header = {
        "about": (
            "One real answer of the committed local panel (data/raw/elicitation) per alternative of a regular "
            "expression in valuelex/parse.py: the shortest answer whose parse changes when that alternative is "
            "dropped. Written by benchmarks/mutation_test.py --pin-regex; 'expected' is the parse when it was written: a parser change that alters it fails tests/test_parse.py, to be reviewed and re-pinned."
        ),
        "cases": cases,
    }
    out_path.write_text(yaml.safe_dump(header, sort_keys=False, allow_unicode=True, width=110), encoding="utf-8")
    return unpinned


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--module", choices=sorted(TESTS), action="append", help="default: all three")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--only", action="append", help="run only the mutant with this id (repeatable)")
    parser.add_argument("--pin-regex", action="store_true", help="write tests/data/parse_alternatives.yaml")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "mutation", help="where the JSON results go")
    parser.add_argument(
        "--shuffle", type=int, metavar="SEED", help="run the mutants in a random order (a stopped run is a sample)"
    )
    parser.add_argument("--shard", metavar="K/N", help="run only every N-th mutant from the K-th (parallel runs)")
    args = parser.parse_args(argv)
    if args.pin_regex:
        unpinned = pin_regex(ROOT / "tests" / "data" / "parse_alternatives.yaml")
        print(f"alternatives no real answer exercises: {len(unpinned)}")
        for mid in unpinned:
            print(f"  {mid}")
        return 0
    modules = args.module or sorted(TESTS)
    if args.list:
        for module in modules:
            for m in mutants(ROOT / "valuelex" / FILES[module]):
                print(f"line {m.line}: {m.id}")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    summary = []
    for module in modules:
        only = {m for m in args.only if m.startswith(f"{module}:")} if args.only else None
        if only is not None and not only:
            continue
        if args.shard:
            k, n = (int(x) for x in args.shard.split("/"))
            order = mutants(ROOT / "valuelex" / FILES[module])
            if args.shuffle is not None:
                random.Random(args.shuffle).shuffle(order)
            only = {m.id for m in order[k::n]} & (only or {m.id for m in order})
        run = mutation_run(module, only, shuffle=args.shuffle)
        saved = args.out / f"{module}.json"
        if only and saved.exists():  # a rerun of some mutants updates the last full run
            run["results"] = {**json.loads(saved.read_text(encoding="utf-8"))["results"], **run["results"]}
        result = score(module, run["results"])
        (args.out / f"{module}.json").write_text(json.dumps({**run, **result}, indent=1), encoding="utf-8")
        summary.append(result)
    print(
        "\n| module | mutants | killed | equivalent | score (all) | score (non-equivalent) | regex alternatives killed |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in summary:
        regex = f"{r['regex_killed']}/{r['regex_mutants']}" if r["regex_mutants"] else "-"
        print(
            f"| {r['module']}.py | {r['mutants']} | {r['killed']} | {r['equivalent']} | {100 * r['score_all']:.1f}% "
            f"| {100 * r['score_non_equivalent']:.1f}% | {regex} |"
        )
    for r in summary:
        for mid in r["survivors"]:
            print(f"survived: {mid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
