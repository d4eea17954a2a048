"""The simulated population's settings, read and checked from ``configs/simulated/``.

``load_spec(path)`` reads ``population.yaml`` and the files it names (the vocabulary, the
sentence completions, the taxonomy, the elicitation prompts and the projective stems). A
mistake is a ``ConfigError`` naming the file and the field, before any answer is made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core import paths
from ..core.errors import ConfigError
from ..core.schema import check_fields, read_yaml

#: The population of the repository (``python -m valuelex.simulated`` uses it unless told otherwise).
DEFAULT_POPULATION = paths.CONFIGS / "simulated" / "population.yaml"
STAGES = ("pretrained", "instruct", "aligned")
#: Answer forms the renderer knows (``styles.*.forms`` weighs them).
FORMS = (
    "comma", "comma_and", "numbered", "bullets", "explained", "sentence", "prose", "label",
    "continuation", "junk", "repeated",
)  # fmt: skip
TEMPLATE_KINDS = (
    "lead_in", "sentence", "prose_opening", "prose_closing", "refusal", "refusal_then_values", "explanation",
    "continuation", "junk",
)  # fmt: skip


@dataclass(frozen=True)
class Style:
    """How one training stage's models answer: form weights and per-answer rates (a model's own drawn around them)."""

    forms: dict[str, float]
    refusal: float
    refusal_then_values: float
    empty: float
    filler: float
    typo: float
    adjective: float
    adverb: float
    british: float
    capitalise: float


@dataclass(frozen=True)
class PanelShape:
    """A panel the configs command writes: the first ``models`` models x a decoding grid."""

    name: str
    models: int
    temperature: tuple[float, ...]
    top_p: tuple[float, ...]
    seed: tuple[int, ...]
    max_tokens: int
    projective_max_tokens: int

    @property
    def settings(self) -> int:
        return len(self.temperature) * len(self.top_p) * len(self.seed)


@dataclass(frozen=True)
class Spec:
    """Everything ``population.yaml`` and its files say (see that file for the meaning of each number)."""

    path: Path
    version: str
    seed: int
    # structure
    factors: str
    factor_correlation: float
    within_dimension_correlation: float
    loading_range: tuple[float, float]
    cross_loading_sd: float
    answer_frequency_max: float
    zipf_exponent: float
    answer_frequency_min: float
    vocabulary_icc: float
    family_share: float
    value_icc: float
    verbosity_sd: float
    # decoding
    reference_temperature: float
    answer_noise: float
    top_p_power: float
    max_value_words: int
    # models
    n_models: int
    n_families: int
    stage_counts: dict[str, int]
    prefix: str
    styles: dict[str, Style]
    system_prompt_boost: dict[str, float]
    # projective
    high_share: float
    consistency: tuple[float, float]
    neutral: float
    projective_refusal: float
    repeat_stem: float
    port: int
    panels: dict[str, PanelShape]
    # the files
    taxonomy: dict[str, dict[str, list[str]]]  # dimension -> sub-dimension -> marker words (lower case)
    values: dict[str, list[list[str]]]  # sub-dimension -> entries, each [noun, adjective?, adverb?]
    british: tuple[tuple[str, str], ...]
    non_values: tuple[str, ...]
    templates: dict[str, tuple[str, ...]]
    prompts: dict[str, str]  # elicitation prompt id -> text
    prompts_version: str
    system_prompt: str | None
    stems: dict[str, dict[str, Any]]  # projective stem id -> {text, kind, targets}
    instrument_system: str | None
    instrument_instruction: str
    completions: dict[str, Any] = field(repr=False)  # projective.yaml

    @property
    def subdimensions(self) -> list[str]:
        return [s for subs in self.taxonomy.values() for s in subs]

    def dimension_of(self, subdimension: str) -> str:
        return next(d for d, subs in self.taxonomy.items() if subdimension in subs)


def _number(path: Path, where: str, value: Any, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise ConfigError(f"{path}: field {where!r} must be a number in [{lo:g}, {hi:g}], got {value!r}")
    return float(value)


def _integer(path: Path, where: str, value: Any, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise ConfigError(f"{path}: field {where!r} must be a whole number >= {lo}, got {value!r}")
    return value


def _range(path: Path, where: str, value: Any, lo: float, hi: float) -> tuple[float, float]:
    if not isinstance(value, list) or len(value) != 2:
        raise ConfigError(f"{path}: field {where!r} must be a list of two numbers [low, high], got {value!r}")
    a, b = (_number(path, f"{where}[{i}]", v, lo, hi) for i, v in enumerate(value))
    if a > b:
        raise ConfigError(f"{path}: field {where!r} must be [low, high] with low <= high, got {value!r}")
    return a, b


def _section(path: Path, data: dict, name: str, spec: dict) -> dict:
    section = data.get(name)
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: missing required field {name!r} (a mapping)")
    check_fields(path, section, spec, f"{name}.")
    return section


def _file(path: Path, data: dict, name: str) -> Path:
    target = (path.parent / data[name]).resolve()
    if not target.is_file():
        raise ConfigError(f"{path}: field {name!r} names {data[name]!r} but {target} does not exist")
    return target


_NUM = (int, float)
_TOP = {
    "version": ((str, int), True), "seed": (int, True), "vocabulary": (str, True), "projective": (dict, True),
    "taxonomy": (str, True), "prompts": (str, True), "instrument": (str, True), "structure": (dict, True),
    "decoding": (dict, True), "models": (dict, True), "styles": (dict, True), "server": (dict, True),
    "panels": (dict, True), "completions": (str, True),
}  # fmt: skip


def _style(path: Path, stage: str, raw: Any) -> Style:
    where = f"styles.{stage}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: missing required field {where!r} (a mapping)")
    rates = ("refusal", "refusal_then_values", "empty", "typo", "adjective", "adverb", "british", "capitalise")
    check_fields(
        path, raw, {"forms": (dict, True), "filler": (_NUM, True), **{r: (_NUM, True) for r in rates}}, f"{where}."
    )
    forms = {}
    for form, weight in raw["forms"].items():
        if form not in FORMS:
            raise ConfigError(f"{path}: unknown answer form '{where}.forms.{form}' (known: {', '.join(FORMS)})")
        forms[form] = _number(path, f"{where}.forms.{form}", weight, 0, 1e6)
    if not any(forms.values()):
        raise ConfigError(f"{path}: field '{where}.forms' must give some form a positive weight")
    values = {r: _number(path, f"{where}.{r}", raw[r], 0, 1) for r in rates}
    if values["refusal"] + values["refusal_then_values"] + values["empty"] > 1:
        raise ConfigError(f"{path}: fields '{where}.refusal', 'refusal_then_values' and 'empty' add up to more than 1")
    return Style(forms=forms, filler=_number(path, f"{where}.filler", raw["filler"], 0, 50), **values)


def _entries(path: Path, values: Any) -> dict[str, list[list[str]]]:
    if not isinstance(values, dict) or not values:
        raise ConfigError(f"{path}: missing required field 'values' (sub-dimension -> words)")
    out: dict[str, list[list[str]]] = {}
    seen: dict[str, str] = {}
    for sub, entries in values.items():
        if not isinstance(entries, list) or not entries:
            raise ConfigError(f"{path}: field 'values.{sub}' must list at least one word")
        out[sub] = []
        for i, entry in enumerate(entries):
            if not isinstance(entry, str) or not entry.strip():
                raise ConfigError(f"{path}: field 'values.{sub}[{i}]' must be text like 'honesty | honest | honestly'")
            forms = [f.strip() for f in entry.split("|")]
            if len(forms) > 3 or any(not f or f != f.lower() for f in forms):
                raise ConfigError(
                    f"{path}: field 'values.{sub}[{i}]' must be 'noun | adjective | adverb' in lower case, got {entry!r}"
                )
            for form in forms:
                if form in seen:
                    raise ConfigError(
                        f"{path}: field 'values.{sub}[{i}]' repeats {form!r} (already under {seen[form]})"
                    )
                seen[form] = sub
            out[sub].append(forms + [""] * (3 - len(forms)))
    return out


def _stems(path: Path) -> tuple[dict[str, dict[str, Any]], str | None, str]:
    data = read_yaml(path)
    stems = {}
    for i, stem in enumerate(data.get("stems") or []):
        if not isinstance(stem, dict) or not {"id", "text", "kind", "targets"} <= set(stem):
            raise ConfigError(f"{path}: field 'stems[{i}]' must have id, text, kind and targets")
        stems[stem["id"]] = {"text": stem["text"], "kind": stem["kind"], "targets": stem["targets"]}
    if "instruction" not in data or "{stem}" not in str(data["instruction"]):
        raise ConfigError(f"{path}: field 'instruction' must contain the placeholder {{stem}}")
    system = data.get("system")
    return stems, (str(system).strip() if system else None), str(data["instruction"])


def _completions(path: Path, stems: dict[str, dict[str, Any]], subdimensions: list[str]) -> dict[str, Any]:
    data = read_yaml(path)
    check_fields(
        path,
        data,
        {"version": ((str, int), True), "targeted": (dict, True), "phrases": (dict, True), "classic": (dict, True),
         "classic_neutral": (dict, True), "refusal": (list, True)},
    )  # fmt: skip
    for stem_id, stem in stems.items():
        if stem["kind"] == "targeted":
            entry = data["targeted"].get(stem_id)
            if not isinstance(entry, dict):
                raise ConfigError(f"{path}: missing required field 'targeted.{stem_id}' (the stem {stem['text']!r})")
            for stance in ("high", "low", "neutral"):
                if not isinstance(entry.get(stance), list) or not entry[stance]:
                    raise ConfigError(f"{path}: field 'targeted.{stem_id}.{stance}' must list completions")
        else:
            frame = data["classic"].get(stem_id)
            if not isinstance(frame, dict) or set(frame) != {"high", "low"}:
                raise ConfigError(f"{path}: field 'classic.{stem_id}' must give a 'high' and a 'low' frame")
            if not data["classic_neutral"].get(stem_id):
                raise ConfigError(f"{path}: missing required field 'classic_neutral.{stem_id}'")
    for sub in subdimensions:
        for stance in ("high", "low"):
            phrases = (data["phrases"].get(sub) or {}).get(stance)
            if not isinstance(phrases, list) or not phrases:
                raise ConfigError(f"{path}: field 'phrases.{sub}.{stance}' must list 'verb phrase || gerund' pairs")
            for i, p in enumerate(phrases):
                if not isinstance(p, str) or p.count("||") != 1:
                    raise ConfigError(f"{path}: field 'phrases.{sub}.{stance}[{i}]' must be 'verb phrase || gerund'")
    return data


def load_spec(path: str | Path = DEFAULT_POPULATION) -> Spec:
    """Read and check ``population.yaml`` and every file it names."""
    path = Path(path).resolve()
    data = read_yaml(path)
    check_fields(path, data, _TOP)
    structure = _section(
        path, data, "structure",
        {k: (t, True) for k, t in {
            "factors": str, "factor_correlation": _NUM, "within_dimension_correlation": _NUM, "loading_range": list,
            "cross_loading_sd": _NUM, "answer_frequency_max": _NUM, "zipf_exponent": _NUM,
            "answer_frequency_min": _NUM, "vocabulary_icc": _NUM, "family_share": _NUM, "value_icc": _NUM,
            "verbosity_sd": _NUM}.items()},
    )  # fmt: skip
    if structure["factors"] not in ("dimension", "subdimension"):
        raise ConfigError(
            f"{path}: field 'structure.factors' must be dimension or subdimension, got {structure['factors']!r}"
        )
    decoding = _section(
        path, data, "decoding",
        {"reference_temperature": (_NUM, True), "answer_noise": (_NUM, True), "top_p_power": (_NUM, True),
         "max_value_words": (int, True)},
    )  # fmt: skip
    models = _section(
        path,
        data,
        "models",
        {"count": (int, True), "families": (int, True), "stages": (dict, True), "prefix": (str, True)},
    )
    stage_counts = {s: _integer(path, f"models.stages.{s}", models["stages"].get(s, 0), 0) for s in STAGES}
    unknown = [s for s in models["stages"] if s not in STAGES]
    if unknown:
        raise ConfigError(f"{path}: unknown field 'models.stages.{unknown[0]}' (allowed: {', '.join(STAGES)})")
    n_models = _integer(path, "models.count", models["count"], 1)
    if sum(stage_counts.values()) != n_models:
        raise ConfigError(
            f"{path}: field 'models.stages' adds up to {sum(stage_counts.values())}, not models.count {n_models}"
        )
    styles_raw = data["styles"]
    styles = {s: _style(path, s, styles_raw.get(s)) for s in STAGES if stage_counts[s]}
    boost = styles_raw.get("system_prompt_boost", {})
    extra = [k for k in styles_raw if k not in (*STAGES, "system_prompt_boost")]
    if extra:
        raise ConfigError(
            f"{path}: unknown field 'styles.{extra[0]}' (allowed: {', '.join(STAGES)}, system_prompt_boost)"
        )
    for form in boost:
        if form not in FORMS:
            raise ConfigError(f"{path}: unknown answer form 'styles.system_prompt_boost.{form}'")
    projective = _section(
        path, data, "projective",
        {"high_share": (_NUM, True), "consistency": (list, True), "neutral": (_NUM, True), "refusal": (_NUM, True),
         "repeat_stem": (_NUM, True)},
    )  # fmt: skip
    server = _section(path, data, "server", {"port": (int, True)})
    panels = {}
    for name, raw in data["panels"].items():
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: field 'panels.{name}' must be a mapping")
        check_fields(
            path, raw,
            {"models": (int, True), "temperature": (list, True), "top_p": (list, True), "seed": (list, True),
             "max_tokens": (int, True), "projective_max_tokens": (int, True)},
            f"panels.{name}.",
        )  # fmt: skip
        if not 1 <= raw["models"] <= n_models:
            raise ConfigError(f"{path}: field 'panels.{name}.models' must be between 1 and models.count {n_models}")
        panels[name] = PanelShape(
            name, raw["models"],
            tuple(_number(path, f"panels.{name}.temperature", t, 0, 2) for t in raw["temperature"]),
            tuple(_number(path, f"panels.{name}.top_p", p, 0, 1) for p in raw["top_p"]),
            tuple(_integer(path, f"panels.{name}.seed", s, 0) for s in raw["seed"]),
            _integer(path, f"panels.{name}.max_tokens", raw["max_tokens"], 1),
            _integer(path, f"panels.{name}.projective_max_tokens", raw["projective_max_tokens"], 1),
        )  # fmt: skip

    # the files it names
    taxonomy_data = read_yaml(_file(path, data, "taxonomy"))
    taxonomy = {
        dim: {sub: [m["marker"].lower() for m in markers] for sub, markers in subs.items()}
        for dim, subs in (taxonomy_data.get("dimensions") or {}).items()
    }
    vocab_path = _file(path, data, "vocabulary")
    vocab = read_yaml(vocab_path)
    check_fields(
        vocab_path, vocab,
        {"version": ((str, int), True), "values": (dict, True), "british": (list, True), "non_values": (list, True),
         "templates": (dict, True)},
    )  # fmt: skip
    values = _entries(vocab_path, vocab["values"])
    subdimensions = [s for subs in taxonomy.values() for s in subs]
    if sorted(values) != sorted(subdimensions):
        raise ConfigError(
            f"{vocab_path}: field 'values' must have one list per sub-dimension of the taxonomy ({', '.join(subdimensions)})"
        )
    planted = {e[0] for entries in values.values() for e in entries}
    for subs in taxonomy.values():
        for sub, markers in subs.items():
            forms = {f for e in values[sub] for f in e if f}
            missing = [m for m in markers if m not in forms]
            if missing:
                raise ConfigError(
                    f"{vocab_path}: field 'values.{sub}' must include the taxonomy's marker {missing[0]!r}"
                )
    for i, pair in enumerate(vocab["british"]):
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) and x for x in pair)):
            raise ConfigError(f"{vocab_path}: field 'british[{i}]' must be [american, british]")
    non_values = tuple(str(w) for w in vocab["non_values"])
    clash = [w for w in non_values if w in planted]
    if clash:
        raise ConfigError(f"{vocab_path}: field 'non_values' lists the planted value word {clash[0]!r}")
    templates = {}
    for kind in TEMPLATE_KINDS:
        items = vocab["templates"].get(kind)
        if not isinstance(items, list) or not items or not all(isinstance(t, str) and t for t in items):
            raise ConfigError(f"{vocab_path}: field 'templates.{kind}' must list at least one text")
        templates[kind] = tuple(items)
    prompts_path = _file(path, data, "prompts")
    prompts_data = read_yaml(prompts_path)
    prompts = {p["id"]: p["text"] for p in prompts_data.get("prompts") or []}
    stems, instrument_system, instruction = _stems(_file(path, data, "instrument"))
    completions = _completions(_file(path, data, "completions"), stems, subdimensions)
    return Spec(
        path=path,
        version=str(data["version"]),
        seed=_integer(path, "seed", data["seed"], 0),
        factors=structure["factors"],
        factor_correlation=_number(path, "structure.factor_correlation", structure["factor_correlation"], -0.5, 0.95),
        within_dimension_correlation=_number(
            path, "structure.within_dimension_correlation", structure["within_dimension_correlation"], -0.5, 0.95
        ),
        loading_range=_range(path, "structure.loading_range", structure["loading_range"], 0, 0.95),
        cross_loading_sd=_number(path, "structure.cross_loading_sd", structure["cross_loading_sd"], 0, 0.5),
        answer_frequency_max=_number(
            path, "structure.answer_frequency_max", structure["answer_frequency_max"], 0.001, 0.99
        ),
        zipf_exponent=_number(path, "structure.zipf_exponent", structure["zipf_exponent"], 0, 5),
        answer_frequency_min=_number(
            path, "structure.answer_frequency_min", structure["answer_frequency_min"], 1e-4, 0.99
        ),
        vocabulary_icc=_number(path, "structure.vocabulary_icc", structure["vocabulary_icc"], 0, 0.95),
        family_share=_number(path, "structure.family_share", structure["family_share"], 0, 1),
        value_icc=_number(path, "structure.value_icc", structure["value_icc"], 0, 0.95),
        verbosity_sd=_number(path, "structure.verbosity_sd", structure["verbosity_sd"], 0, 3),
        reference_temperature=_number(
            path, "decoding.reference_temperature", decoding["reference_temperature"], 0.01, 2
        ),
        answer_noise=_number(path, "decoding.answer_noise", decoding["answer_noise"], 0, 5),
        top_p_power=_number(path, "decoding.top_p_power", decoding["top_p_power"], 0, 10),
        max_value_words=_integer(path, "decoding.max_value_words", decoding["max_value_words"], 1),
        n_models=n_models,
        n_families=_integer(path, "models.families", models["families"], 1),
        stage_counts=stage_counts,
        prefix=models["prefix"],
        styles=styles,
        system_prompt_boost={k: _number(path, f"styles.system_prompt_boost.{k}", v, 0, 1e6) for k, v in boost.items()},
        high_share=_number(path, "projective.high_share", projective["high_share"], 0, 1),
        consistency=_range(path, "projective.consistency", projective["consistency"], 0, 1),
        neutral=_number(path, "projective.neutral", projective["neutral"], 0, 1),
        projective_refusal=_number(path, "projective.refusal", projective["refusal"], 0, 1),
        repeat_stem=_number(path, "projective.repeat_stem", projective["repeat_stem"], 0, 1),
        port=_integer(path, "server.port", server["port"], 1),
        panels=panels,
        taxonomy=taxonomy,
        values=values,
        british=tuple((a, b) for a, b in vocab["british"]),
        non_values=non_values,
        templates=templates,
        prompts=prompts,
        prompts_version=str(prompts_data.get("version", "")),
        system_prompt=prompts_data.get("system"),
        stems=stems,
        instrument_system=instrument_system,
        instrument_instruction=instruction,
        completions=completions,
    )
