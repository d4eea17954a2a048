"""Every setting of a run, defined once: one frozen settings object per stage, loaded from a run file.

A **run file** (``configs/runs/NAME.yaml``) names everything a run needs: the mode (replay or
live), where its outputs go, the elicitation panel, the projective panel and judge, and any stage
setting that differs from the defaults below. The notebooks receive the run file as their one
papermill parameter (plus overrides), so a stage's settings can never disagree between notebooks.

The defaults here are **our choices** unless a comment says ``[paper]``: the paper leaves almost
every one of them open (``README.md``, "The paper's choices and ours"). ``valuelex settings RUN``
prints the resolved settings of a run.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml

from . import paths
from .config import ConfigError
from .display import Report

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
    max_models: int | None = None  # only the first N models of the panel (small test runs)
    examples_per_model: int = 3  # raw answers shown per model


@dataclass(frozen=True)
class LexiconSettings:
    """Notebook 02: from raw descriptors to value words."""

    min_respondents: int = 5  # a word must be used by at least this many respondents
    min_models: int = 1  # ... and by at least this many models
    synonym_threshold: float | None = None  # merge near-synonyms above this embedding cosine; None = off
    top_n: int = 30  # words shown in the top-words figure


@dataclass(frozen=True)
class EFASettings:
    """Notebook 03: exploratory factor analysis of word co-occurrence (also read by 04 and 07)."""

    unit: Literal["respondent", "response"] = "respondent"  # rows: a respondent's 15 answers pooled, or one answer
    coding: Literal["binary", "counts"] = "binary"  # word used or not
    correlation: Literal["tetrachoric", "pearson"] = "tetrachoric"  # the words are 0/1 cuts of a propensity
    n_factors: int | Literal["parallel"] = "parallel"  # parallel analysis decides, or a number
    extraction: Literal["minres", "ml"] = "minres"
    rotation: Literal["oblimin", "promax", "varimax", "none"] = "oblimin"  # the dimensions may correlate
    cutoff: float = 0.30  # a word is assigned to its factor when |loading| reaches this
    min_frequency: float = 0.05  # a word must occur in at least this share of units ...
    min_units: int = 5  # ... and in at least this many units
    max_words: int | Literal["auto"] | None = None  # None: every word above the floor; "auto": units // 2
    parallel_max_words: int | Literal["auto"] | None = "auto"  # words parallel analysis counts on: units // 3
    parallel_ties: Literal["include", "exclude"] = "include"  # words tied at that cap: all counted or none
    parallel_iter: int = 20  # null data sets in the parallel analysis
    parallel_quantile: float = 0.95  # the null eigenvalue quantile an observed eigenvalue must beat
    parallel_null: Literal["permute", "normal"] = "permute"  # shuffle each word's column, or psych's normal data
    parallel_eigenvalues: Literal["fa", "pc"] = "fa"  # reduced-matrix eigenvalues (psych) or components (Horn)
    n_boot: int = 100  # bootstrap samples of units for the stability check (the finer run: 500)
    within_correlation: Literal["tetrachoric", "rwg", "tetrachoric_pooled"] = "tetrachoric"  # model thresholds
    n_boot_within: int = 50  # bootstrap samples (respondents redrawn inside each model), within-model factors
    count_resamples: int = 50  # seeds and bootstrap resamples behind the factor count's distribution
    seed: int = 20240419

    def analyse_options(self) -> dict[str, Any]:
        """These settings as the keyword arguments of :func:`valuelex.efa.analyse` (notebook 04 re-derives with them)."""
        from .efa import analyse

        takes = inspect.signature(analyse).parameters
        return {name: value for name, value in dataclasses.asdict(self).items() if name in takes}


@dataclass(frozen=True)
class CFASettings:
    """Notebooks 04 and 08: confirmatory factor analysis (units and coding as in ``efa``)."""

    estimator: Literal["WLSMV", "ML"] = "WLSMV"  # the words as ordered 0/1 indicators (lavaan's default for them)
    holdout: bool | Literal["auto"] = "auto"  # split the units (EFA half / CFA half) when there are >= 400
    holdout_fraction: float = 0.5  # share of units used to re-derive the EFA model when splitting
    max_indicators: int = 8  # words per EFA-derived factor (largest loadings)
    seed: int = 20240419


@dataclass(frozen=True)
class SemanticSettings:
    """Notebook 05: semantic clustering of the lexicon."""

    model_dir: str | None = None  # a sentence-transformers folder; None: all-MiniLM-L6-v2 from its PyPI package
    template: str = "bare"  # word context: a name in configs/embedding.yaml or a string with {word}
    min_count: int = 1  # keep lexicon words named at least this many times
    method: Literal["kmeans", "agglomerative-average", "agglomerative-ward"] = "kmeans"
    k_main: int = 3  # the clustering drawn first: the paper's three dimensions [paper]
    k_min: int = 2  # smallest k tried by the silhouette
    k_max: int = 12  # largest k tried by the silhouette
    projection: Literal["umap", "tsne", "pca"] = "umap"
    n_permutations: int = 1000  # shuffles for the permutation baseline of the agreement with the EFA
    tie_margin: float = 0.01  # a taxonomy placement whose margin over the runner-up is below this is a tie
    weak_margin: float = 0.03  # ... below this, weak (also marked in Figure 1)
    label_top: int = 12  # also label this many of the most frequent words on the map
    seed: int = 0


@dataclass(frozen=True)
class ProjectiveSettings:
    """Notebook 06: the projective (sentence-completion) test."""

    panel: str = "projective_local"  # whom to test: a panel under configs/panels/
    scorer: Literal["stance", "embedding", "logprob", "judge"] = "stance"  # main scorer for the figures
    second_scorer: Literal["stance", "embedding", "logprob", "judge"] | None = "embedding"  # agreement
    fallback_scorer: Literal["embedding"] | None = "embedding"  # used, and said so, while judge calls are missing
    judge: str = "qwen2.5-coder-1.5b-instruct"  # the judge of the stance/logprob scorers (the best local model)
    stem_ids: tuple[str, ...] | None = None  # only these stems; None: every stem of the instrument
    max_models: int | None = None  # only the first N models of the panel
    respondents_per_model: int | None = None  # only the first N respondents of each model
    validate: bool = True  # re-run the validation on our labelled test part and the minimal pairs
    n_boot: int = 2000  # bootstrap replicates for the confidence intervals of the scores
    seed: int = 0

    @property
    def judged_by(self) -> list[str]:
        """The scorers of this run that call the judge model (paid in live mode), in order."""
        return [s for s in dict.fromkeys((self.scorer, self.second_scorer)) if s in JUDGE_SCORERS]


#: Scorers that call an LLM judge.
JUDGE_SCORERS = ("stance", "logprob", "judge")


@dataclass(frozen=True)
class SimulationSettings:
    """Notebook 07: method validation on planted structures."""

    n_words: int = 190  # the paper's "190+ unique words" [paper]
    n_respondents: int = 525  # the paper's 525 respondents [paper]
    conditions: dict[str, tuple[float, float]] = field(
        default_factory=lambda: {"strong": (0.45, 0.8), "moderate": (0.3, 0.6)}
    )  # planted loading ranges
    zipf_exponent: float = 0.6
    sizes: tuple[int, ...] = (60, 120, 250, 525)  # respondents for the recovery curve (the finer run adds 1000)
    replications: int = 6  # simulated panels per size and condition (the finer run: 20)
    parallel_iter: int = 20
    n_jobs: int = 2  # processes (results do not depend on it)
    word_sizes: tuple[int, ...] = (120, 525)  # respondents for the word-selection comparison
    model_counts: tuple[int, ...] = (4, 8, 16, 32, 64)  # part 2: models per simulated panel
    per_model: tuple[int, ...] = (5, 17, 30, 100)  # part 2: respondents (decoding settings) per model
    model_grid_replications: int = 1  # part 2: simulated panels per cell (the finer run: 10)
    model_grid_parallel_iter: int = 6  # part 2: null data sets per parallel analysis (the finer run: 20)
    vocabulary_icc: float = 0.2  # share of a word's latent variance that is the model's vocabulary
    value_icc: float = 0.0  # share of the value factors' variance that lies between models
    choice_replications: int = 1  # panels per shape when choosing the within-model correlation (finer: 10)
    seed: int = 20240419


@dataclass(frozen=True)
class HumanValuesSettings:
    """Notebook 08: human value frameworks against the lexicon."""

    null_quantile: float = 0.95  # covered = closer to a category than this share of everyday non-value words
    threshold: float | None = None  # one fixed similarity threshold instead of calibrated ones
    include_liberty: bool = False  # add Liberty, the provisional sixth moral foundation
    weight: Literal["count", "respondents"] = "count"  # usage weight of a word for the shares
    top_n: int = 20  # uncovered words listed
    min_indicators: int = 3  # CFA: a factor needs this many usable indicator words
    max_indicators: int = 3  # CFA: at most this many words per factor
    min_users: int = 3  # CFA: an indicator must be used by at least this many respondents
    second_order: bool = False  # CFA: also Schwartz's values under the four higher-order values


@dataclass(frozen=True)
class Figure1Settings:
    """Notebook 09: the paper's Figure 1 (b, c) from our data."""

    label_top: int = 25  # words labelled on the map (the most used)
    words_per_subdimension: int = 4  # words shown around the wheel


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


@dataclass(frozen=True)
class RunSettings(Report):
    """A whole run: its mode, its folders and every stage's settings."""

    name: str = DEFAULT_RUN
    mode: Literal["replay", "live"] = "replay"  # replay: stored answers only, never a call
    output: Path = Path(".")  # data/processed, figures and build go under it ("." = the committed folders)
    raw: Path = Path("data/raw")  # the response store (the dataset): read in replay, appended to in live
    path: Path | None = None  # the run file it came from
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
        return self.output_dir == paths.ROOT

    @property
    def output_dir(self) -> Path:
        return _resolve(self.output)

    @property
    def raw_dir(self) -> Path:
        return _resolve(self.raw)

    def sections(self) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = [
            ("", {"run file": str(self.path or ""), "outputs": str(self.output_dir), "store": str(self.raw_dir)})
        ]
        for section in STAGES:
            out.append((section, {k: _show(v) for k, v in dataclasses.asdict(getattr(self, section)).items()}))
        return out

    def metrics(self) -> dict[str, Any]:
        return {section: dataclasses.asdict(getattr(self, section)) for section in STAGES}


def _show(value: Any) -> Any:
    return value if isinstance(value, (int, float, bool)) and not isinstance(value, bool) else str(value)


def _resolve(path: Path) -> Path:
    path = Path(path)
    return (path if path.is_absolute() else paths.ROOT / path).resolve()


# ------------------------------------------------------------------------------------------
# Loading and validating
# ------------------------------------------------------------------------------------------
def _type_name(hint: Any) -> str:
    if get_origin(hint) is Literal:
        return " or ".join(repr(a) for a in get_args(hint))
    if get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(hint))
    names = {type(None): "null", bool: "true or false", int: "a whole number", float: "a number", str: "text"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))


def _coerce(where: str, hint: Any, value: Any) -> Any:
    """``value`` checked against the type ``hint``; a ConfigError naming ``where`` otherwise."""
    origin = get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for option in get_args(hint):
            try:
                return _coerce(where, option, value)
            except ConfigError:
                continue
        raise ConfigError(f"{where} must be {_type_name(hint)}, got {value!r}")
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
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where} must be a whole number, got {value!r}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where} must be a number, got {value!r}")
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where} must be text, got {value!r}")
    if hint is Path:
        if isinstance(value, (str, Path)) and str(value):
            return Path(value)
        raise ConfigError(f"{where} must be a folder path, got {value!r}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        args = get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(f"{where}[{i}]", args[0], v) for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(f"{where} must be a list of {len(args)} values, got {value!r}")
        return tuple(_coerce(f"{where}[{i}]", a, v) for i, (a, v) in enumerate(zip(args, value, strict=True)))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping, got {value!r}")
        key_type, value_type = get_args(hint)
        return {_coerce(f"{where}", key_type, k): _coerce(f"{where}.{k}", value_type, v) for k, v in value.items()}
    raise TypeError(f"no rule for {hint!r}")  # a bug in this module, not a user error


def build(cls: type, values: dict[str, Any], where: str) -> Any:
    """An instance of the settings class ``cls`` from a mapping, every field checked."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where} must be a mapping of settings, got {values!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = [k for k in values if k not in names]
    if unknown:
        close = difflib.get_close_matches(unknown[0], names, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(names)}"
        raise ConfigError(f"{where}: unknown setting {unknown[0]!r} ({hint})")
    return cls(**{k: _coerce(f"{where}.{k}", hints[k], v) for k, v in values.items()})


def run_file(name_or_path: str | Path) -> Path:
    """The run file for a name under ``configs/runs/`` or a path."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        return candidate
    return RUNS / f"{name_or_path}.yaml"


def parse_override(text: str) -> tuple[str, Any]:
    """``"efa.n_factors=3"`` -> ``("efa.n_factors", 3)`` (the value read as YAML)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r} must look like section.setting=value (e.g. efa.n_factors=3)")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def load_run(name_or_path: str | Path = DEFAULT_RUN, overrides: dict[str, Any] | None = None) -> RunSettings:
    """Read, validate and resolve a run file; ``overrides`` (``{"efa.n_factors": 3}``) win over it."""
    path = run_file(name_or_path)
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in RUNS.glob("*.yaml"))) or "none"
        raise ConfigError(f"{path}: run file not found (runs in {RUNS}: {known})")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    for key, value in (overrides or {}).items():
        section, _, setting = key.partition(".")
        if setting:
            data.setdefault(section, {})
            if not isinstance(data[section], dict):
                raise ConfigError(f"{path}: field {section!r} must be a mapping of settings")
            data[section] = {**data[section], setting: value}
        else:
            data[section] = value
    top = {f.name for f in dataclasses.fields(RunSettings) if f.name != "path"}
    unknown = [k for k in data if k not in top]
    if unknown:
        raise ConfigError(f"{path}: unknown field {unknown[0]!r} (allowed: {', '.join(sorted(top))})")
    hints = typing.get_type_hints(RunSettings)
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key in STAGES:
            values[key] = build(STAGES[key], value or {}, f"{path}: {key}")
        else:
            values[key] = _coerce(f"{path}: field {key!r}", hints[key], value)
    values.setdefault("name", path.stem)
    if "output" not in values:
        values["output"] = Path(".") if values["name"] == DEFAULT_RUN else Path("runs") / values["name"]
    if overrides and "output" not in overrides and values["output"] == Path("."):
        # the committed outputs are made by the run file as written; a changed run writes elsewhere
        values["output"] = Path("runs") / f"{values['name']}-changed"
    return RunSettings(path=path, **values)
