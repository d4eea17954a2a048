"""Every setting of a run, defined once: one frozen settings object per stage, loaded from a run file.

A **run file** (``configs/runs/NAME.yaml``) names everything a run needs: the mode (replay or
live), the elicitation panel, the projective panel and judge, and any stage setting that differs
from the defaults below. The notebooks receive the run file as their one papermill parameter
(plus overrides), so a stage's settings can never disagree between notebooks.

The defaults here, and in the settings classes defined next to the code that consumes them and
composed here (``EFASettings``, ``LexiconSettings``, ``SimulationSettings``), are **our choices**
unless a comment says ``[paper]``: the paper leaves almost every one of them open (``README.md``,
"The paper's choices and ours"). Each setting's valid values are part of its type, on the line that
defines it (``Annotated[int, Range(1)]``: a whole number >= 1); a value outside them stops the run
before anything runs, with one line naming the file (or the ``--set``) and the field.
``valuelex settings RUN`` prints the resolved settings.

**Which run writes what** is decided by the run's identity, never by a field a copy carries
along. The *committed run* is ``configs/runs/default.yaml`` as committed (unchanged from git's
``HEAD``) with no ``--set``: it alone writes the committed ``data/processed/``, ``figures/`` and
``build/``, and it only replays ``data/raw/``. Every other run (another file, a copy of the default,
an edited default, the default with ``--set``) writes under its own output folder (``runs/NAME/``
unless its ``output`` names a folder outside the project) and keeps the answers it pays for in its
own response store (``runs/NAME/raw/``), which reads the committed dataset ``data/raw/`` as a
read-only base: what is stored there is replayed, never asked again. ``valuelex adopt NAME`` adds a
run's answers to the dataset; nothing else writes ``data/raw/``.
"""

# Over 600 lines: the run-file format, defined once: every stage's settings and its validation. Sections move
# next to the code that consumes them (EFASettings lives in psychometrics/efa/settings.py, LexiconSettings in
# lexicon.py, SimulationSettings in methods/simulation/settings.py); this module composes them into RunSettings.

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import subprocess
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import yaml

from .core import paths
from .core.display import Report
from .core.errors import ConfigError
from .core.schema import Boot, Count, Length, Quantile, Range, Seed, Share, Size
from .lexicon import LexiconSettings
from .methods.simulation import SimulationSettings
from .psychometrics.efa.settings import EFASettings

RUNS = paths.CONFIGS / "runs"
DEFAULT_RUN = "default"


# ------------------------------------------------------------------------------------------
# One settings object per stage
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ElicitationSettings:
    """Notebook 01: whom to ask for value words, and how."""

    panel: str = "local"  # a panel under configs/panels/ or a path: the 120 respondents of the committed data
    use_system_prompt: bool = True  # ask for a comma-separated list of single words (the paper does not say)
    max_models: Count | None = None  # only the first N models of the panel (small test runs)
    examples_per_model: Size = 3  # raw answers shown per model

    def invalid(self) -> list[tuple[tuple[str, ...], str]]:
        return []


@dataclass(frozen=True)
class CFASettings:
    """Notebooks 04 and 08: confirmatory factor analysis (units and coding as in ``efa``)."""

    estimator: Literal["WLSMV", "ML"] = "WLSMV"  # the words as ordered 0/1 indicators (lavaan's default for them)
    holdout: bool | Literal["auto"] = "auto"  # split the units (EFA half / CFA half) when there are >= 400
    holdout_fraction: Annotated[float, Range(0, 1, low_open=True, high_open=True)] = (
        0.5  # share of units to re-derive the EFA model when splitting
    )
    max_indicators: Annotated[int, Range(2)] = 8  # words per EFA-derived factor (largest loadings)
    seed: Seed = 20240419

    def invalid(self) -> list[tuple[tuple[str, ...], str]]:
        return []


@dataclass(frozen=True)
class SemanticSettings:
    """Notebook 05: semantic clustering of the lexicon."""

    model_dir: str | None = None  # a sentence-transformers folder; None: all-MiniLM-L6-v2 from its PyPI package
    template: str = "bare"  # word context: a name in configs/embedding.yaml or a string with {word}
    min_count: Count = 1  # keep lexicon words named at least this many times
    method: Literal["kmeans", "agglomerative-average", "agglomerative-ward"] = "kmeans"
    k_main: Annotated[int, Range(2)] = 3  # the clustering drawn first: the paper's three dimensions [paper]
    k_min: Annotated[int, Range(2)] = 2  # smallest k tried by the silhouette
    k_max: Annotated[int, Range(2)] = 12  # largest k tried by the silhouette
    projection: Literal["umap", "tsne", "pca"] = "umap"
    n_permutations: Count = 1000  # shuffles for the permutation baseline of the agreement with the EFA
    tie_margin: Share = 0.01  # a taxonomy placement whose margin over the runner-up is below this is a tie
    weak_margin: Share = 0.03  # ... below this, weak (also marked in Figure 1)
    label_top: Size = 12  # also label this many of the most frequent words on the map
    seed: Seed = 0

    def invalid(self) -> list[tuple[tuple[str, ...], str]]:
        out = []
        if self.k_min > self.k_max:
            out.append(
                (("k_min", "k_max"), f"semantic.k_min ({self.k_min}) must be at most semantic.k_max ({self.k_max})")
            )
        if self.tie_margin > self.weak_margin:
            out.append(
                (
                    ("tie_margin", "weak_margin"),
                    f"semantic.tie_margin ({self.tie_margin:g}) must be at most semantic.weak_margin ({self.weak_margin:g})",
                )
            )
        return out


Scorer = Literal["stance", "embedding", "logprob", "judge"]


@dataclass(frozen=True)
class ProjectiveSettings:
    """Notebook 06: the projective (sentence-completion) test."""

    panel: str = "projective_local"  # whom to test: a panel under configs/panels/
    scorer: Scorer = "stance"  # main scorer for the figures
    second_scorer: Scorer | None = "embedding"  # agreement (another scorer than the main one)
    fallback_scorer: Literal["embedding"] | None = "embedding"  # used, and said so, while judge calls are missing
    judge: str = "qwen2.5-coder-1.5b-instruct"  # the judge of the stance/logprob scorers (the best local model): a card
    stem_ids: Annotated[tuple[str, ...], Length(1)] | None = (
        None  # only these stems; None: every stem of the instrument
    )
    max_models: Count | None = None  # only the first N models of the panel
    respondents_per_model: Count | None = None  # only the first N respondents of each model
    validate: bool = True  # re-run the validation on our labelled test part and the minimal pairs
    n_boot: Boot = 2000  # bootstrap replicates for the confidence intervals of the scores
    seed: Seed = 0

    def invalid(self) -> list[tuple[tuple[str, ...], str]]:
        if self.second_scorer == self.scorer:
            return [
                (
                    ("second_scorer", "scorer"),
                    f"projective.second_scorer must differ from projective.scorer ({self.scorer!r}) or be null: "
                    "a scorer's agreement with itself says nothing",
                )
            ]
        return []

    @property
    def judged_by(self) -> list[str]:
        """The scorers of this run that call the judge model (paid in live mode), in order."""
        return [s for s in dict.fromkeys((self.scorer, self.second_scorer)) if s in JUDGE_SCORERS]


#: Scorers that call an LLM judge.
JUDGE_SCORERS = ("stance", "logprob", "judge")


@dataclass(frozen=True)
class HumanValuesSettings:
    """Notebook 08: human value frameworks against the lexicon."""

    null_quantile: Quantile = 0.95  # covered = closer to a category than this share of everyday non-value words
    threshold: Annotated[float, Range(-1, 1)] | None = (
        None  # one fixed cosine-similarity threshold instead of calibrated ones
    )
    include_liberty: bool = False  # add Liberty, the provisional sixth moral foundation
    weight: Literal["count", "respondents"] = "count"  # usage weight of a word for the shares
    top_n: Count = 20  # uncovered words listed
    min_indicators: Annotated[int, Range(2)] = 3  # CFA: a factor needs this many usable indicator words
    max_indicators: Annotated[int, Range(2)] = 3  # CFA: at most this many words per factor
    min_users: Count = 3  # CFA: an indicator must be used by at least this many respondents
    second_order: bool = False  # CFA: also Schwartz's values under the four higher-order values

    def invalid(self) -> list[tuple[tuple[str, ...], str]]:
        if self.min_indicators > self.max_indicators:
            return [
                (
                    ("min_indicators", "max_indicators"),
                    f"human_values.min_indicators ({self.min_indicators}) must be at most "
                    f"human_values.max_indicators ({self.max_indicators})",
                )
            ]
        return []


@dataclass(frozen=True)
class Figure1Settings:
    """Notebook 09: the paper's Figure 1 (b, c) from our data."""

    label_top: Size = 25  # words labelled on the map (the most used)
    words_per_subdimension: Count = 4  # words shown around the wheel

    def invalid(self) -> list[tuple[tuple[str, ...], str]]:
        return []


#: Run-file section -> settings class, in pipeline order.
STAGES: dict[str, type] = {
    "elicitation": ElicitationSettings,
    "lexicon": LexiconSettings,
    "efa": EFASettings,
    "cfa": CFASettings,
    "semantic": SemanticSettings,
    "projective": ProjectiveSettings,
    "simulation": SimulationSettings,
    "human_values": HumanValuesSettings,
    "figure1": Figure1Settings,
}


@dataclass(frozen=True, repr=False)  # a console shows the report, not the dataclass
class RunSettings(Report):
    """A whole run: its mode, its folders and every stage's settings."""

    name: str = DEFAULT_RUN  # the run file's name (a ``name:`` line, if any, must say the same)
    mode: Literal["replay", "live"] = "replay"  # replay: stored answers only, never a call
    output: Path = Path(".")  # data/processed, figures and build go under it; another run than the committed: runs/NAME
    raw: Path = Path("data/raw")  # the run's own response store; another run than the committed: OUTPUT/raw
    base: Path | None = None  # read-only response store under the run's own (another run: the dataset data/raw)
    path: Path | None = None  # the run file it came from
    committed: bool = False  # set by load_run: the committed run as written (writes the committed outputs)
    elicitation: ElicitationSettings = field(default_factory=ElicitationSettings)
    lexicon: LexiconSettings = field(default_factory=LexiconSettings)
    efa: EFASettings = field(default_factory=EFASettings)
    cfa: CFASettings = field(default_factory=CFASettings)
    semantic: SemanticSettings = field(default_factory=SemanticSettings)
    projective: ProjectiveSettings = field(default_factory=ProjectiveSettings)
    simulation: SimulationSettings = field(default_factory=SimulationSettings)
    human_values: HumanValuesSettings = field(default_factory=HumanValuesSettings)
    figure1: Figure1Settings = field(default_factory=Figure1Settings)

    @property
    def title(self) -> str:  # type: ignore[override]
        return f"Run {self.name!r} ({self.mode})"

    @property
    def writes_committed_outputs(self) -> bool:
        """Only the committed run as written writes the committed data/processed, figures and build."""
        return self.committed

    @property
    def output_dir(self) -> Path:
        return _resolve(self.output)

    @property
    def raw_dir(self) -> Path:
        return _resolve(self.raw)

    @property
    def base_dir(self) -> Path | None:
        return None if self.base is None else _resolve(self.base)

    def sections(self) -> list[tuple[str, Any]]:
        where = {
            "run file": shown(self.path) if self.path else "",
            "outputs": shown(self.output_dir),
            "store": shown(self.raw_dir),
            "store's read-only base": shown(self.base_dir) if self.base_dir else "none",
            "committed run": "yes: writes the committed outputs" if self.committed else "no",
        }
        out: list[tuple[str, Any]] = [("", where)]
        for section in STAGES:
            out.append((section, {k: _show(v) for k, v in dataclasses.asdict(getattr(self, section)).items()}))
        return out

    def metrics(self) -> dict[str, Any]:
        return {section: dataclasses.asdict(getattr(self, section)) for section in STAGES}


def _show(value: Any) -> Any:
    return value if isinstance(value, (int, float, bool)) and not isinstance(value, bool) else str(value)


def shown(path: Path) -> str:
    """A path relative to the project when it is inside it."""
    try:
        return str(Path(path).resolve().relative_to(paths.ROOT.resolve())) or "."
    except ValueError:
        return str(path)


def _resolve(path: Path | str) -> Path:
    path = Path(path)
    return (path if path.is_absolute() else paths.ROOT / path).resolve()


# ------------------------------------------------------------------------------------------
# Reading run files and --set values
# ------------------------------------------------------------------------------------------
class RunYAML(yaml.SafeLoader):
    """YAML for run files and ``--set`` values: only ``true``/``false`` are booleans.

    PyYAML reads YAML 1.1, where ``no``, ``off``, ``yes``, ``on``, ``y`` and ``n`` are booleans too:
    ``use_system_prompt: no`` would silently mean false, and a key named ``n`` would become False.
    Here they stay text, and a setting that wants true or false says so in one line.
    """


RunYAML.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
RunYAML.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
#: Words YAML 1.1 reads as booleans, refused where a boolean belongs.
YAML11_BOOLEANS = {"yes", "no", "on", "off", "y", "n"}


def read_yaml_text(text: str) -> Any:
    """YAML as run files are read (only true/false are booleans)."""
    return yaml.load(text, Loader=RunYAML)  # noqa: S506 - RunYAML is a SafeLoader


# ------------------------------------------------------------------------------------------
# Checking values against their types and ranges
# ------------------------------------------------------------------------------------------
def _type_name(hint: Any) -> str:
    origin = get_origin(hint)
    if origin is Annotated:
        base, *rules = get_args(hint)
        described = [r.describe() for r in rules if hasattr(r, "describe")]
        if get_origin(base) is tuple:
            return f"a list {' '.join(described)}".strip()
        return " ".join([_type_name(base), *described])
    if origin is Literal:
        return " or ".join(repr(a) for a in get_args(hint))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(hint))
    if origin is tuple:
        return "a list"
    names = {type(None): "null", bool: "true or false", int: "a whole number", float: "a number", str: "text"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))


def _notes(hint: Any) -> str:
    if get_origin(hint) is Annotated:
        return "".join(f" ({r.note})" for r in get_args(hint)[1:] if getattr(r, "note", ""))
    if get_origin(hint) in (typing.Union, types.UnionType):
        return "".join(_notes(a) for a in get_args(hint))
    return ""


def _coerce(where: str, hint: Any, value: Any) -> Any:
    """``value`` checked against the type ``hint`` (and its range); a ConfigError naming ``where`` otherwise."""
    origin = get_origin(hint)
    if origin is Annotated:
        base, *rules = get_args(hint)
        if get_origin(base) is tuple:  # an element's own mistake names the element
            made = _coerce(where, base, value)
        else:
            try:
                made = _coerce(where, base, value)
            except ConfigError:
                raise ConfigError(f"{where} must be {_type_name(hint)}, got {value!r}{_notes(hint)}") from None
        if not all(rule.ok(made) for rule in rules):
            raise ConfigError(f"{where} must be {_type_name(hint)}, got {value!r}{_notes(hint)}")
        return made
    if origin in (typing.Union, types.UnionType):
        for option in get_args(hint):
            try:
                return _coerce(where, option, value)
            except ConfigError:
                continue
        raise ConfigError(f"{where} must be {_type_name(hint)}, got {value!r}{_bool_hint(value)}{_notes(hint)}")
    if origin is Literal:
        if value in get_args(hint) and type(value) is type(next(a for a in get_args(hint) if a == value)):
            return value
        raise ConfigError(f"{where} must be {_type_name(hint)}, got {value!r}")
    if hint is type(None):
        if value is None:
            return None
        raise ConfigError(f"{where} must be null, got {value!r}")
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where} must be true or false, got {value!r}{_bool_hint(value)}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where} must be a whole number, got {value!r}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where} must be a number, got {value!r}")
    if hint is str:
        if isinstance(value, str) and value.strip():
            return value
        raise ConfigError(f"{where} must be text, got {value!r}")
    if hint is Path:
        if isinstance(value, (str, Path)) and str(value).strip():
            return Path(value)
        raise ConfigError(f"{where} must be a folder path, got {value!r}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        args = get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            items = tuple(_coerce(f"{where}[{i}]", args[0], v) for i, v in enumerate(value))
            if len(set(items)) != len(items):
                raise ConfigError(f"{where} lists a value twice: {list(value)!r}")
            return items
        if len(args) != len(value):
            raise ConfigError(f"{where} must be a list of {len(args)} values, got {value!r}")
        return tuple(_coerce(f"{where}[{i}]", a, v) for i, (a, v) in enumerate(zip(args, value, strict=True)))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping, got {value!r}")
        key_type, value_type = get_args(hint)
        return {_coerce(f"{where}", key_type, k): _coerce(f"{where}.{k}", value_type, v) for k, v in value.items()}
    raise TypeError(f"no rule for {hint!r}")  # a bug in this module, not a user error


def _bool_hint(value: Any) -> str:
    if isinstance(value, str) and value.strip().lower() in YAML11_BOOLEANS:
        return " (write true or false: yes/no/on/off are not read as booleans here)"
    return ""


#: Who set each value: a section, or "section.setting", -> "--set ..." (the run file otherwise).
Origins = dict[str, str]


def build(cls: type, values: dict[str, Any], where: str, origins: Origins | None = None, section: str = "") -> Any:
    """An instance of the settings class ``cls`` (run-file section ``section``) from a mapping, every
    field and its range checked.

    ``where`` names the file the values come from; ``origins`` names the ``--set`` of any value
    that came from one: its mistakes are blamed on that ``--set``, not on the file.
    """
    origins = origins or {}
    section = section or next((s for s, c in STAGES.items() if c is cls), cls.__name__)

    def blame(*names: str) -> str:
        for name in names:
            for key in (f"{section}.{name}", section):
                if key in origins:
                    return origins[key]
        return where

    if not isinstance(values, dict):
        raise ConfigError(f"{blame()}: {section} must be a mapping of settings, got {values!r}")
    hints = typing.get_type_hints(cls, include_extras=True)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    for key in values:
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(names)}"
            raise ConfigError(f"{blame(str(key))}: {section}: unknown setting {key!r} ({hint})")
    made = cls(**{k: _coerce(f"{blame(k)}: {section}.{k}", hints[k], v) for k, v in values.items()})
    for fields, message in made.invalid():
        raise ConfigError(f"{blame(*fields)}: {message}")
    return made


def run_file(name_or_path: str | Path) -> Path:
    """The run file for a name under ``configs/runs/`` or a path."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        return candidate
    return RUNS / f"{name_or_path}.yaml"


def _text_of(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def parse_override(text: str) -> tuple[str, Any]:
    """``"efa.n_factors=3"`` -> ``("efa.n_factors", 3)`` (the value read as YAML: only true/false are booleans)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {text}: must look like section.setting=value (e.g. efa.n_factors=3)")
    try:
        value = read_yaml_text(raw)
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def parse_overrides(texts: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Every ``--set`` as one mapping; the same setting given twice is a mistake (which one was meant?)."""
    out: dict[str, Any] = {}
    for text in texts:
        key, value = parse_override(text)
        if key in out:
            raise ConfigError(
                f"--set {key} is given twice ({_text_of(out[key])} and {_text_of(value)}): give each setting once"
            )
        out[key] = value
    return out


#: Top-level fields a run file (or a --set) may give; the rest are stage sections.
TOP_FIELDS = ("name", "mode", "output", "raw", "base")


def load_run(name_or_path: str | Path = DEFAULT_RUN, overrides: dict[str, Any] | None = None) -> RunSettings:
    """Read, validate and resolve a run file; ``overrides`` (``{"efa.n_factors": 3}``) win over it.

    Every mistake is one ConfigError naming where it is: the run file, or the ``--set`` that made it.
    """
    path = run_file(name_or_path)
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in RUNS.glob("*.yaml"))) or "none"
        raise ConfigError(f"{path}: run file not found (runs in {RUNS}: {known})")
    if not path.is_file():
        raise ConfigError(f"{path}: is a folder, not a run file")
    try:
        data = read_yaml_text(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start + 1})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    unknown = [k for k in data if k not in (*TOP_FIELDS, *STAGES)]
    if unknown:
        raise ConfigError(
            f"{path}: unknown field {unknown[0]!r} (allowed: {', '.join(sorted((*TOP_FIELDS, *STAGES)))})"
        )
    origins = _apply_overrides(path, data, overrides or {})

    def blame(key: str) -> str:
        return origins.get(key, str(path))

    hints = typing.get_type_hints(RunSettings, include_extras=True)
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key in STAGES:
            values[key] = build(STAGES[key], value or {}, str(path), origins, section=key)
        else:
            values[key] = _coerce(f"{blame(key)}: field {key!r}", hints[key], value)
    if values.get("name", path.stem) != path.stem:
        raise ConfigError(
            f"{blame('name')}: field 'name' is {values['name']!r} but the run file is {path.name}: "
            "a run is named by its file (remove the name line)"
        )
    values["name"] = path.stem
    committed = is_committed_run(path, overrides)
    values.update(_folders(values, path, committed, blame))
    values.update(_checked_references(values, origins, path))
    return RunSettings(path=path, committed=committed, **values)


def _apply_overrides(path: Path, data: dict[str, Any], overrides: dict[str, Any]) -> Origins:
    """Merge ``overrides`` into the run file's ``data``; who set what (``--set KEY=VALUE``)."""
    origins: Origins = {}
    for key, value in overrides.items():
        label = f"--set {key}={_text_of(value)}"
        section, _, setting = str(key).partition(".")
        if section in STAGES:
            if setting:
                data.setdefault(section, {})
                if data[section] is None:
                    data[section] = {}
                if not isinstance(data[section], dict):
                    raise ConfigError(f"{path}: field {section!r} must be a mapping of settings")
                data[section] = {**data[section], setting: value}
            else:
                data[section] = value
        elif section in TOP_FIELDS and not setting:
            data[section] = value
        else:
            known = [*STAGES, *TOP_FIELDS]
            close = difflib.get_close_matches(section, known, n=1)
            hint = (
                f"did you mean {close[0]!r}?"
                if close
                else f"sections: {', '.join(STAGES)}; fields: {', '.join(TOP_FIELDS)}"
            )
            what = "unknown section" if setting else "unknown field"
            raise ConfigError(f"{label}: {what} {section!r} ({hint})")
        origins[str(key)] = label
    return origins


def is_committed_run(path: Path, overrides: dict[str, Any] | None = None) -> bool:
    """Whether this is the committed run as written: ``configs/runs/default.yaml``, unchanged from
    git's ``HEAD`` (when git can tell: a folder that is not a git checkout counts as unchanged), no ``--set``."""
    if overrides:
        return False
    if Path(path).resolve() != (RUNS / f"{DEFAULT_RUN}.yaml").resolve():
        return False
    try:
        status = subprocess.run(
            ["git", "status", "--porcelain", "--", str(Path(path).resolve())],
            cwd=paths.ROOT, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return True
    return status.returncode != 0 or not status.stdout.strip()


def _folders(values: dict[str, Any], path: Path, committed: bool, blame) -> dict[str, Any]:
    """The run's output folder, its own response store and the store's read-only base (see the module's doc)."""
    root = paths.ROOT.resolve()
    dataset = (paths.DATA / "raw").resolve()
    if committed:
        for key, want in (("output", root), ("raw", dataset)):
            if key in values and _resolve(values[key]) != want:
                raise ConfigError(
                    f"{path}: field {key!r} must be left out of the committed run (it writes {shown(want)}); "
                    "put other folders in a run file of your own"
                )
        if values.get("base") is not None:
            raise ConfigError(f"{path}: field 'base' must be left out of the committed run (its store is the dataset)")
        return {"output": root, "raw": dataset, "base": None}
    name = values["name"] + ("-changed" if Path(path).resolve() == (RUNS / f"{DEFAULT_RUN}.yaml").resolve() else "")
    output = values.get("output")
    output = root / "runs" / name if output is None or _resolve(output) == root else _resolve(output)
    _check_folder(blame("output"), "output", output, name)
    raw = output / "raw" if values.get("raw") is None else _resolve(values["raw"])
    if raw == dataset or dataset in raw.parents:
        raise ConfigError(
            f"{blame('raw')}: field 'raw' is {shown(raw)}, inside the committed dataset, which no run writes: leave "
            f"'raw' out (the run's own store, {shown(output / 'raw')}, reads data/raw/ as its base); "
            f"`valuelex adopt {values['name']}` adds a run's answers to the dataset"
        )
    _check_folder(blame("raw"), "raw", raw, name)
    if "base" in values:
        base = values["base"]
        if base is not None:
            base = _resolve(base)
            if not base.is_dir():
                raise ConfigError(
                    f"{blame('base')}: field 'base' must be an existing response store folder, got {shown(base)}"
                )
            if base == raw:
                raise ConfigError(
                    f"{blame('base')}: field 'base' must differ from the run's own store 'raw' ({shown(raw)})"
                )
    else:
        base = dataset if dataset.is_dir() else None
    return {"output": output, "raw": raw, "base": base}


def _check_folder(label: str, key: str, folder: Path, name: str) -> None:
    """A folder a run writes: not a file; inside the project only under runs/ (the rest is tracked)."""
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{label}: field {key!r} must be a folder, but {shown(folder)} is a file")
    root = paths.ROOT.resolve()
    if (folder == root or root in folder.parents) and (root / "runs") not in folder.parents:
        raise ConfigError(
            f"{label}: field {key!r} is {shown(folder)}, inside the project, where a run writes only under runs/ "
            f"(data/, figures/, configs/, notebooks/ and valuelex/ are tracked): leave it out (runs/{name}/) "
            "or name a folder outside the project"
        )


def _checked_references(values: dict[str, Any], origins: Origins, path: Path) -> dict[str, Any]:
    """Panels, the judge, stems, the embedding template and model folder exist; paths made absolute."""
    from .core.schema import read_yaml

    out: dict[str, Any] = {}
    stages = {s: values.get(s) or STAGES[s]() for s in ("elicitation", "projective", "semantic")}

    def blame(key: str) -> str:
        return origins.get(key) or origins.get(key.split(".")[0]) or str(path)

    changes: dict[str, dict[str, Any]] = {}
    for section in ("elicitation", "projective"):
        panel = stages[section].panel
        if "/" in panel or panel.endswith((".yaml", ".yml")):
            file = _resolve(panel)
            if not file.is_file():
                raise ConfigError(
                    f"{blame(f'{section}.panel')}: {section}.panel names {panel!r}, but {file} is not a file"
                )
            changes.setdefault(section, {})["panel"] = str(file)
        elif not (paths.PANELS / f"{panel}.yaml").is_file():
            known = ", ".join(sorted(p.stem for p in paths.PANELS.glob("*.yaml")))
            raise ConfigError(
                f"{blame(f'{section}.panel')}: {section}.panel names {panel!r}, but there is no "
                f"{shown(paths.PANELS / (panel + '.yaml'))} (panels: {known})"
            )
    projective = stages["projective"]
    if not (paths.MODEL_CARDS / f"{projective.judge}.yaml").is_file():
        cards = sorted(p.stem for p in paths.MODEL_CARDS.glob("*.yaml"))
        close = difflib.get_close_matches(projective.judge, cards, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"cards are in {shown(paths.MODEL_CARDS)}"
        raise ConfigError(
            f"{blame('projective.judge')}: projective.judge names {projective.judge!r}, but there is no model card "
            f"{shown(paths.MODEL_CARDS / (projective.judge + '.yaml'))} ({hint})"
        )
    if projective.stem_ids:
        instrument = read_yaml(paths.INSTRUMENTS / "projective.yaml")
        known_stems = [s.get("id") for s in instrument.get("stems", []) if isinstance(s, dict)]
        unknown = [s for s in projective.stem_ids if s not in known_stems]
        if unknown:
            raise ConfigError(
                f"{blame('projective.stem_ids')}: projective.stem_ids names {unknown[0]!r}, which is not a stem of "
                f"{shown(paths.INSTRUMENTS / 'projective.yaml')} (stems: {', '.join(map(str, known_stems))})"
            )
    semantic = stages["semantic"]
    templates = read_yaml(paths.CONFIGS / "embedding.yaml").get("templates", {})
    if semantic.template not in templates and "{word}" not in semantic.template:
        raise ConfigError(
            f"{blame('semantic.template')}: semantic.template must be one of {', '.join(templates)} "
            f"(configs/embedding.yaml) or a text with {{word}}, got {semantic.template!r}"
        )
    if semantic.model_dir is not None:
        folder = _resolve(semantic.model_dir)
        if not folder.is_dir():
            raise ConfigError(
                f"{blame('semantic.model_dir')}: semantic.model_dir must be a sentence-transformers folder, "
                f"but {shown(folder)} is not a folder"
            )
        changes.setdefault("semantic", {})["model_dir"] = str(folder)
    for section, change in changes.items():
        out[section] = dataclasses.replace(stages[section], **change)
    return out
