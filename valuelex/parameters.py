"""Notebook parameters given on the command line, checked before any notebook runs.

``run_all.sh -p NAME VALUE`` and ``--params FILE.yaml`` go through here: every name must be a
parameter of at least one notebook that will run (a typo is an error, not a papermill warning
in a log), and every value is converted to the type of that notebook's default (``false`` is
the boolean False, ``abc`` is not a number). Each notebook then gets a YAML file with only its
own parameters. A parameter whose default is ``None`` takes any YAML value unless the parameters
cell annotates it (``max_models: int | None = None``).

    python -m valuelex.parameters --notebooks notebooks --only 01 --out build/params -p mode live

prints the notebooks to run, one per line, and writes ``build/params/<notebook>.yaml``.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import UserError, run_main

TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")
NONE_WORDS = ("none", "null", "~")


class ParameterError(UserError, ValueError):
    """A notebook parameter that no notebook takes, or a value of the wrong type."""


@dataclass(frozen=True)
class Parameter:
    """One assignment of a notebook's parameters cell."""

    notebook: str
    name: str
    default: Any
    allowed: tuple[type, ...] | None  # from an annotation like ``int | None``; None: from the default


_ANNOTATION_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "None": type(None), "list": list}


def _annotation_types(node: ast.expr | None) -> tuple[type, ...] | None:
    """``int | None`` -> (int, NoneType); an annotation we do not understand -> None (no check)."""
    if node is None:
        return None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        left, right = _annotation_types(node.left), _annotation_types(node.right)
        return None if left is None or right is None else left + right
    if isinstance(node, ast.Name) and node.id in _ANNOTATION_TYPES:
        return (_ANNOTATION_TYPES[node.id],)
    if isinstance(node, ast.Constant) and node.value is None:
        return (type(None),)
    return None


def notebook_parameters(path: str | Path) -> dict[str, Parameter]:
    """The parameters cell (tagged ``parameters``) of a notebook: name -> Parameter."""
    path = Path(path)
    nb = json.loads(path.read_text(encoding="utf-8"))
    cell = next((c for c in nb.get("cells", []) if "parameters" in c.get("metadata", {}).get("tags", [])), None)
    if cell is None:
        return {}
    out = {}
    for node in ast.parse("".join(cell.get("source", ""))).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, value, annotation = node.targets[0].id, node.value, None
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            name, value, annotation = node.target.id, node.value, node.annotation
        else:
            continue
        try:
            default = ast.literal_eval(value)
        except ValueError:
            default = None
        out[name] = Parameter(path.stem, name, default, _annotation_types(annotation))
    return out


def _type_of(param: Parameter) -> tuple[type, ...] | None:
    if param.allowed is not None:
        return param.allowed
    if param.default is None:
        return None  # any value
    if isinstance(param.default, str):
        return (str, int, float)  # a string default often also takes a number ("parallel" or 4)
    if isinstance(param.default, bool):
        return (bool,)
    if isinstance(param.default, float):
        return (float, int)
    return (type(param.default),)


def _words(types: tuple[type, ...]) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "text", list: "a list"}
    names[type(None)] = "None"
    return " or ".join(names.get(t, t.__name__) for t in types)


def _from_text(text: str, types: tuple[type, ...] | None) -> Any:
    """A command-line value: a boolean or None word where the parameter takes one, a number or a list, or the text."""
    word = text.strip().lower()
    if types is not None and bool in types and word in TRUE_WORDS + FALSE_WORDS:
        return word in TRUE_WORDS
    if word in NONE_WORDS and (types is None or type(None) in types):
        return None
    if types == (str,):
        return text
    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return parsed if isinstance(parsed, (int, float, list)) and not isinstance(parsed, bool) else text


def convert(param: Parameter, value: Any) -> Any:
    """``value`` (a command-line string, or a YAML value) as the parameter's type; ParameterError if it is not one."""
    types = _type_of(param)
    if isinstance(value, str):
        value = _from_text(value, types)
    if types is None:
        return value
    if isinstance(value, float) and value.is_integer() and int in types and float not in types:
        value = int(value)
    if not (bool in types if isinstance(value, bool) else isinstance(value, types)):  # True is an int to Python
        raise ParameterError(
            f"parameter {param.name!r} of notebook {param.notebook} takes {_words(types)} "
            f"(default {param.default!r}), got {value!r}"
        )
    return value


def resolve(
    notebooks: Sequence[Path], given: Sequence[tuple[str, Any]], only: str | None = None
) -> dict[Path, dict[str, Any]]:
    """The notebooks to run (``only``: a name prefix) with their converted parameters; checks every name."""
    selected = [nb for nb in notebooks if only is None or nb.stem.startswith(only)]
    if not notebooks:
        raise ParameterError("no notebooks found")
    if not selected:
        names = ", ".join(nb.stem for nb in notebooks)
        raise ParameterError(f"--only {only} matches no notebook (notebooks: {names})")
    params = {nb: notebook_parameters(nb) for nb in selected}
    known = sorted({name for p in params.values() for name in p})
    out: dict[Path, dict[str, Any]] = {nb: {} for nb in selected}
    for name, value in given:
        takers = [nb for nb in selected if name in params[nb]]
        if not takers:
            close = difflib.get_close_matches(name, known, n=1)
            which = "the notebook to run takes" if len(selected) == 1 else "the notebooks to run take"
            hint = f"did you mean {close[0]!r}?" if close else f"{which}: {', '.join(known)}"
            raise ParameterError(f"unknown parameter {name!r}: no notebook to run takes it ({hint})")
        for nb in takers:
            out[nb][name] = convert(params[nb][name], value)
    return out


def _read_params_file(path: Path) -> list[tuple[str, Any]]:
    from .config import ConfigError, read_yaml

    try:
        data = read_yaml(path)
    except ConfigError as exc:
        raise ParameterError(str(exc)) from None
    return list(data.items())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Check run_all.sh's notebook parameters and write one file per notebook."
    )
    parser.add_argument("--notebooks", type=Path, default=Path("notebooks"))
    parser.add_argument("--only", default=None)
    parser.add_argument("--out", type=Path, required=True, help="folder for <notebook>.yaml parameter files")
    parser.add_argument("-f", "--params", type=Path, action="append", default=[], help="a YAML file of parameters")
    parser.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    args = parser.parse_args(argv)
    given: list[tuple[str, Any]] = []
    for path in args.params:
        given += _read_params_file(path)
    given += [(name, value) for name, value in args.p]
    notebooks = sorted(args.notebooks.glob("[0-9][0-9]_*.ipynb"))
    resolved = resolve(notebooks, given, args.only or None)
    args.out.mkdir(parents=True, exist_ok=True)
    for old in args.out.glob("*.yaml"):
        old.unlink()
    for nb, values in resolved.items():
        (args.out / f"{nb.stem}.yaml").write_text(yaml.safe_dump(values, sort_keys=True), encoding="utf-8")
        print(nb)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
