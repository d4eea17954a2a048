"""Reading and checking YAML files: one line naming the file and the field for every mistake.

(Moved here from ``valuelex.config`` for issue 21; the one typed validator of the design grows from it.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
