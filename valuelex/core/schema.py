"""Reading and checking YAML files: one line naming the file and the field for every mistake.

(Moved here from ``valuelex.config`` for issue 21; the one typed validator of the design grows from it.)

A setting's valid values are part of its type (``Annotated[int, Range(1)]``: a whole number >= 1);
:class:`Range`, :class:`Length` and the shorthands below are declared here, in the lowest layer, so that
every settings class can live next to the code that consumes it (``EFASettings`` with the EFA estimator)
and ``valuelex.settings`` checks them all the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml

from .errors import ConfigError


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML file whose top level is a mapping; every problem is a ConfigError naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a YAML file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start + 1})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    if data is None:
        raise ConfigError(f"{path}: the file is empty")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of fields at the top level, got {type(data).__name__}")
    return data


def check_fields(path: Path, data: dict[str, Any], spec: dict[str, tuple[Any, bool]], prefix: str = "") -> None:
    """Unknown fields, missing required fields and wrong types are errors naming the field."""
    for key in data:
        if key not in spec:
            raise ConfigError(f"{path}: unknown field '{prefix}{key}' (allowed: {', '.join(spec)})")
    for key, (types, required) in spec.items():
        if key not in data:
            if required:
                raise ConfigError(f"{path}: missing required field '{prefix}{key}'")
            continue
        value = data[key]
        if (isinstance(value, bool) and types is not bool) or not isinstance(value, types):
            want = types.__name__ if isinstance(types, type) else " or ".join(t.__name__ for t in types)
            raise ConfigError(f"{path}: field '{prefix}{key}' must be {want}, got {value!r}")


# ------------------------------------------------------------------------------------------
# Valid values
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Range:
    """The valid values of a number: from ``low`` to ``high`` (None: no bound); ``*_open``: the bound itself excluded."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    note: str = ""  # said after the error, e.g. "a share: 0.95, not 95"

    def ok(self, value: Any) -> bool:
        if value != value:  # NaN
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return not (self.high is not None and (value > self.high or (self.high_open and value == self.high)))

    def describe(self) -> str:
        low, high = _number(self.low), _number(self.high)
        if self.high is None:
            return "" if self.low is None else f"{'>' if self.low_open else '>='} {low}"
        if self.low is None:
            return f"{'<' if self.high_open else '<='} {high}"
        if self.low_open:
            return f"above {low} and {'below' if self.high_open else 'at most'} {high}"
        return f"from {low} to {'below ' if self.high_open else ''}{high}"


def _number(x: float | None) -> str:
    return "" if x is None else str(int(x)) if float(x).is_integer() else f"{x:g}"


@dataclass(frozen=True)
class Length:
    """A list of at least ``minimum`` values."""

    minimum: int = 1

    def ok(self, value: Any) -> bool:
        return len(value) >= self.minimum

    def describe(self) -> str:
        return f"of at least {self.minimum} value{'s' if self.minimum > 1 else ''}"


#: Shorthands for the ranges the settings classes use.
Count = Annotated[int, Range(1)]  # a whole number >= 1
Size = Annotated[int, Range(0)]  # a whole number >= 0 (0: show none)
Boot = Annotated[int, Range(2)]  # bootstrap samples: at least 2 make a spread
Seed = Annotated[int, Range(0, 2**32 - 1)]  # numpy's seeds
Share = Annotated[float, Range(0, 1)]
Quantile = Annotated[float, Range(0, 1, low_open=True, high_open=True, note="a share: 0.95, not 95")]
Icc = Annotated[float, Range(0, 1, high_open=True)]
Words = Annotated[int, Range(2)] | Literal["auto"] | None  # words kept by a rule: >= 2, "auto" or every word
