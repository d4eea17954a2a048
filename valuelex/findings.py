"""What each notebook showed, written from the run's own numbers (issue 18.5).

A notebook's markdown never states a number of the run: a researcher's run on another panel must not
read the default run's "120 respondents" under an output of 150. The closing "What this notebook
showed" bullets (and notebook 06's section 8) are therefore generated here, one function per
notebook, from the numbers the notebook recorded (``valuelex.core.display.record``). A verdict that
depends on the data is computed from the numbers against a floor stated in the text (``passes`` /
``does not pass``, ``estimable`` / ``not estimable``). Text about the paper (its numbers, marked
[paper]) is fixed; so are the design and the "Try next" suggestions, which stay in the notebooks.

Each function takes the recorded numbers (a mapping; by default those recorded in this kernel so
far, ``core.display.recorded_here()``) and returns IPython ``Markdown``; ``.data`` holds the text. A
number that was not recorded (a section skipped, a run with other settings) leaves its sentence
out rather than guessing it.

The wording thresholds below are ours; each sentence that uses one states it.
"""

# Over 600 lines: one closing-findings function per notebook (nine), each short; they move into each stage's
# report as the notebooks become stages (issue 21).

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from IPython.display import Markdown

#: A projective scorer "passes" its validation when its ROC AUC reaches this on the minimal pairs and
#: on the labelled test part (our floor: 0.8 is where Hosmer & Lemeshow's "excellent" discrimination begins).
VALIDATION_FLOOR = 0.80
#: The reliability floor of notebook 06 (valuelex.projective.reliability.RELIABILITY_FLOOR), stated in its text.
RELIABILITY_FLOOR = 0.70
#: Tucker congruence at which two factors count as "fairly similar" (Lorenzo-Seva & ten Berge 2006).
CONGRUENCE_MATCH = 0.85
#: A factor count is called stable when the full sample's count is also the count of at least this share of
#: subsamples (our wording; on planted 3-factor panels of 525 the right count reached 100%, docs/factor_count.md).
STABLE_COUNT_SHARE = 0.8
#: Eta squared from which a factor's scores differ "strongly" between models (Cohen's large effect).
LARGE_ETA_SQUARED = 0.14
#: Below this mean silhouette, Kaufman & Rousseeuw find "no substantial structure".
SILHOUETTE_STRUCTURE = 0.25
#: ARI under which agreement is called weak (our wording; 1 = the same partition).
WEAK_ARI = 0.2
#: The paper's taxonomy, in its order [paper].
DIMENSIONS = ("Competence", "Character", "Integrity")
#: The paper's scale [paper].
PAPER_RESPONDENTS = 525
PAPER_WORDS = "190+"


# --------------------------------------------------------------------------- formatting


def _numbers(numbers: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if numbers is not None:
        return numbers
    from .core.display import recorded_here

    return recorded_here()


def _shown(bullets: Iterable[str | None]) -> Markdown:
    return Markdown("\n".join(f"- {b}" for b in bullets if b))


def _count(n: float) -> str:
    """An integer with thousands separators: 1800 -> 1,800."""
    return f"{int(round(n)):,}"


def _dec(x: float, digits: int = 2) -> str:
    return f"{x:.{digits}f}"


def _num(x: float) -> str:
    """A count that may be a median: 5.0 -> 5, 4.5 -> 4.5."""
    return _count(x) if float(x).is_integer() else _dec(x, 1)


def _pct(share: float) -> str:
    return f"{share:.0%}"


def _span(values: Iterable[float], fmt: Callable[[float], str] = _dec, joiner: str = " to ") -> str:
    """'0.40 to 0.72' (or one value when they are all equal)."""
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return "none"
    lo, hi = fmt(min(vals)), fmt(max(vals))
    return lo if lo == hi else f"{lo}{joiner}{hi}"


def _and(items: Iterable[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{_count(n)} {one if n == 1 else (many or one + 's')}"


def _is(n: int) -> str:
    return "is" if n == 1 else "are"


def _p(p: float) -> str:
    return "p < 0.001" if p < 0.0005 else f"p = {p:.3f}"


# --------------------------------------------------------------------------- 01 elicitation


def elicitation(numbers: Mapping[str, Any] | None = None) -> Markdown:
    """Notebook 01: the panel, the answers, how many parse, where the unparseable ones come from."""
    m = _numbers(numbers)
    panel = f"The panel `{m['panel']}`" if "panel" in m else "The panel"
    prompts = f" to {_plural(m['prompts'], 'prompt')}" if "prompts" in m else ""
    asked = (
        "all replayed from the response store (no call made)"
        if m.get("calls_made", 0) == 0
        else f"{_count(m['calls_made'])} of them asked now, the rest replayed from the store"
    )
    first = (
        f"**Showed.** {panel} has {_plural(m['respondents'], 'respondent')} from {_plural(m['models'], 'model')}: "
        f"{_count(m['responses'])} answers{prompts}, {asked}."
    )
    ok = round(m["parse_ok_share"] * m["responses"])
    parsed = (
        f"{_count(ok)} of them ({_pct(m['parse_ok_share'])}) parse into a word list, "
        f"{_count(m['descriptors'])} descriptors in all."
    )
    others = {k: v for k, v in m.get("parse_status", {}).items() if k != "ok" and v}
    if others:
        rest = _and(f"{_count(v)} `{k}`" for k, v in sorted(others.items(), key=lambda kv: -kv[1]))
        parsed += f" The others are kept raw and counted: {rest}."
    elif m.get("unparseable"):
        parsed += f" {_count(m['unparseable'])} are kept raw and counted as `unparseable`."
    by_model = m.get("unparseable_by_model") or {}
    if by_model and m.get("unparseable"):
        model, n = max(by_model.items(), key=lambda kv: (kv[1], kv[0]))
        stage = (m.get("training_stages") or {}).get(model)
        share = n / m["unparseable"]
        parsed += (
            f" {_count(n)} of the {_count(m['unparseable'])} `unparseable` ({_pct(share)}) come from `{model}`"
            + (f", {'an' if stage[0] in 'aeiou' else 'a'} {stage} model" if stage else "")
        )
        if stage == "pretrained":
            parsed += ": it continues the prompt as text instead of answering it"
        parsed += "."
    return _shown([first + " " + parsed])


# --------------------------------------------------------------------------- 02 lexicon


def lexicon(numbers: Mapping[str, Any] | None = None) -> Markdown:
    """Notebook 02: the funnel from raw descriptors to lexicon words, next to the paper's."""
    m = _numbers(numbers)
    rule = f"used by at least {_plural(m['min_respondents'], 'respondent')}"
    if m.get("min_models", 1) > 1:
        rule += f" and {_plural(m['min_models'], 'model')}"
    size = m["lexicon_size"]
    text = (
        f"**Showed.** Of {_count(m['raw_descriptors'])} raw descriptors ({_count(m['unique_raw'])} distinct terms) "
        f"{_plural(size, 'word')} survive our frequency rule ({rule})."
    )
    respondents = m.get("respondents")
    compare = "smaller than" if size < 190 else "about the size of" if size < 200 else "larger than"
    text += f' The paper reports "{PAPER_WORDS}" words from {PAPER_RESPONDENTS} respondents [paper]: this lexicon is {compare} that'
    text += f", from a panel of {_plural(respondents, 'respondent')}." if respondents else "."
    units = m["incidence_shape"][0] if "incidence_shape" in m else None
    without = m.get("respondents_without_words")
    if units is not None and without is not None:
        text += (
            f" Every one of the {_count(units)} respondents uses at least one lexicon word."
            if without == 0
            else f" {_count(without)} of the {_count(units)} respondents use no lexicon word."
        )
    return _shown([text])


# --------------------------------------------------------------------------- 03 EFA


def _kmo_word(kmo: float) -> str:
    return "good" if kmo >= 0.8 else "adequate" if kmo >= 0.6 else "below what is usually called adequate"


def _count_spread(level: str, m: Mapping[str, Any], key: str) -> str:
    """How sure a factor count is: over seeds of the null data and over subsamples of the units."""
    share, mode = m.get(f"{key}factor_count_modal_share"), m.get(f"{key}factor_count_mode")
    stable = share is not None and share >= STABLE_COUNT_SHARE and mode == int(str(m[f"{key}factor_count"]).split()[0])
    verdict = (
        "stable"
        if stable
        else f"not stable by our rule (the same count in at least {_pct(STABLE_COUNT_SHARE)} of subsamples; a "
        "subsample has fewer units than the run, so its spread is an upper bound)"
    )
    return (
        f"The {level} count is {verdict}: over seeds of the null data {m[f'{key}factor_count_seeds']}; "
        f"over subsamples of the units {m[f'{key}factor_count']}."
    )


def efa(numbers: Mapping[str, Any] | None = None) -> Markdown:
    """Notebook 03: the factor count, the matrix, the model confound, within models, stability."""
    m = _numbers(numbers)
    bullets = []
    count = (
        f"parallel analysis finds {_plural(m['parallel_n_factors'], 'factor')} "
        f"(counted on the {m['words_counted']} most frequent of {_plural(m['words_analysed'], 'analysed word')})"
    )
    if m["n_factors"] != m["parallel_n_factors"]:
        count += f", and {m['n_factors']} were extracted as the settings ask"
    adequacy = f"KMO {_dec(m['kmo'])}, {_kmo_word(m['kmo'])}"
    if m.get("smoothed"):
        why = " (more words than units)" if m["words_analysed"] >= m["units"] else ""
        matrix = f"the tetrachoric matrix was smoothed{why}, so the χ²-based fit says little; RMSR {_dec(m['rmsr'])}"
    else:
        matrix = f"RMSEA {_dec(m['rmsea'], 3)}, TLI {_dec(m['tli'])}, RMSR {_dec(m['rmsr'])}"
    first = f"**Showed.** Pooled over the {_count(m['units'])} units, {count}; {adequacy}; {matrix}."
    if m.get("heywood_cases"):
        first += f" {_plural(m['heywood_cases'], 'Heywood case')}."
    bullets.append(first)
    if m.get("factor_count"):
        bullets.append(_count_spread("pooled", m, ""))

    eta = m.get("factor_eta_squared_by_model") or m.get("pooled_eta_squared")
    if eta:
        models = m.get("models")
        between = f"the {models} models" if models else "the models"
        strong = sum(e >= LARGE_ETA_SQUARED for e in eta)
        verdict = (
            f"{'Every factor' if strong == len(eta) else f'{strong} of the {len(eta)} factors'} partly *is* the model "
            f"that answered"
            if strong
            else "No factor is mainly the model that answered"
        )
        bullets.append(
            f"{verdict}: η² of the factor scores between {between} runs from {_span(eta, joiner=' to ')} "
            f"({LARGE_ETA_SQUARED} or more is a large effect)."
        )

    if "within_factors" in m:
        best = m.get("pooled_within_congruence") or []
        matched = sum(c >= CONGRUENCE_MATCH for c in best)
        text = (
            f"Within models (model identity removed) parallel analysis finds {_plural(m['within_factors'], 'factor')}; "
            f"{matched} of the {len(best)} pooled factors {'has' if matched == 1 else 'have'} a within-model match "
            f"(best congruences {_span(best)}; {CONGRUENCE_MATCH} counts as a match)"
        )
        boot = m.get("within_bootstrap_median") or []
        if boot:
            stable = sum(c >= CONGRUENCE_MATCH for c in boot)
            text += (
                f". Over bootstrap samples of respondents the within-model factors' median congruence is "
                f"{_span(boot)}: {stable} of {len(boot)} reach {CONGRUENCE_MATCH}, so the within-model structure "
                + ("is stable" if stable == len(boot) else "is not stable")
                + f" at {_count(m['units'])} units"
            )
        bullets.append(text + ".")
        if m.get("within_factor_count"):
            bullets.append(_count_spread("within-model", m, "within_"))

    pooled = m.get("congruence_median") or []
    if pooled:
        stable = sum(c >= CONGRUENCE_MATCH for c in pooled)
        bullets.append(
            f"The pooled factors over {m.get('bootstrap_samples', 'the')} bootstrap samples: median congruence "
            f"{_span(pooled)} with the full-sample factors; {stable} of {len(pooled)} reach {CONGRUENCE_MATCH}."
        )
    return _shown(bullets)


# --------------------------------------------------------------------------- 04 CFA


def _reason(status: str) -> str:
    return status.split(": ", 1)[1] if status.startswith("not estimable: ") else status


def cfa(numbers: Mapping[str, Any] | None = None) -> Markdown:
    """Notebook 04: which confirmatory models are estimable, which fit, and what that says of the taxonomy."""
    m = _numbers(numbers)
    estimable = list(m.get("models_estimable") or [])
    status = dict(m.get("model_status") or {})
    good = list(m.get("good_fit_models") or [])
    n = m["cfa_units"]
    fitted = m.get("models_fitted", len(status))
    head = (
        f"**Showed.** On {_count(n)} units ({'a held-out half confirms' if m.get('held_out_split') else 'no held-out split'}), "
        f"{m['estimator']}: "
        + (
            f"{_plural(len(estimable), 'model')} of the {fitted} fitted {_is(len(estimable))} estimable"
            if estimable
            else f"none of the {fitted} models fitted is estimable"
        )
    )
    head += f" ({_and(estimable)})." if estimable else "."
    bullets = [head]
    failed: dict[str, list[str]] = {}
    for name, s in status.items():
        if name not in estimable:
            failed.setdefault(_reason(s), []).append(name)
    if failed:
        bullets.append(
            "Not estimable or not fitted, with lavaan's reason: "
            + "; ".join(f"{_and(names)}: {reason}" for reason, names in failed.items())
            + "."
        )
    if estimable:
        meets = [e for e in estimable if e in good]
        text = (
            f"Of the estimable models, {_and(meets)} {'meets' if len(meets) == 1 else 'meet'} Hu & Bentler's cut-offs"
            if meets
            else "None of the estimable models meets Hu & Bentler's cut-offs"
        )
        indices = [
            (label, m.get(f"cfi_{key}"), m.get(f"rmsea_{key}"), m.get(f"srmr_{key}"))
            for label, key in (("the 3-dimension taxonomy", "taxonomy_3"), ("the EFA-derived model", "efa"))
        ]
        shown = [
            f"{label}: CFI {_dec(c, 3)}, RMSEA {_dec(r, 3)}, SRMR {_dec(s, 3)}"
            for label, c, r, s in indices
            if c is not None and r is not None and s is not None
        ]
        bullets.append(text + (f" ({'; '.join(shown)})." if shown else "."))
        if not m.get("n_adequate", True):
            bullets.append(
                f"{_count(n)} units are too few for a stable CFA of these models: the indices are indicative only."
            )
    taxonomy = [name for name in status if name.startswith("taxonomy")]
    testable = [name for name in taxonomy if name in estimable]
    if not testable:
        bullets.append(
            "So on this panel the taxonomy is *not testable*, which is different from *rejected*; notebook 07 shows "
            "by simulation how many respondents a study of this kind needs."
        )
    elif any(name in good for name in testable):
        bullets.append(f"The taxonomy fits here as {_and(n for n in testable if n in good)}.")
    else:
        bullets.append(f"The taxonomy is estimable ({_and(testable)}) but does not meet the cut-offs on this panel.")
    return _shown(bullets)


# --------------------------------------------------------------------------- 05 semantic clusters


def semantic(numbers: Mapping[str, Any] | None = None) -> Markdown:
    """Notebook 05: cluster structure, the clusters against the taxonomy, agreement with the EFA."""
    m = _numbers(numbers)
    bullets = []
    best, spread = m["silhouette_best"], m["silhouette_spread"]
    dims = list(m.get("main_cluster_dimensions") or [])
    k_main = len(dims) if dims else None
    if best < SILHOUETTE_STRUCTURE:
        structure = (
            f"The embeddings carry little cluster structure: mean silhouettes {_span([best - spread, best], joiner=' to ')} "
            f'over the k searched (below {SILHOUETTE_STRUCTURE}, Kaufman & Rousseeuw\'s "no substantial structure")'
        )
        if k_main:
            structure += f", so k = {k_main} is a granularity chosen, not discovered"
    else:
        structure = (
            f"The embeddings have some cluster structure: the best k = {m['k_best']} has a mean silhouette of "
            f"{_dec(best, 3)} (the k searched span {_span([best - spread, best])})"
        )
    if m.get("k_best_at_edge"):
        structure += f"; the best k ({m['k_best']}) is at the edge of the range searched"
    bullets.append(f"**Showed.** {structure}.")
    if dims:
        counts = {d: dims.count(d) for d in dict.fromkeys(dims)}
        named = _and(f"{d} ({_plural(c, 'cluster')})" for d, c in counts.items())
        missing = [d for d in DIMENSIONS if d not in counts]
        text = f"The {k_main} clusters are closest to {named}"
        text += f"; no cluster is closest to {_and(missing)}" if missing else ""
        flags = [f for f in (m.get("main_cluster_flags") or []) if f != "clear"]
        if flags:
            text += f" ({_plural(len(flags), 'call')} {_is(len(flags))} weak or tied)"
        bullets.append(text + ".")
    if m.get("efa_available") and "ari_main" in m:
        ari, p = m["ari_main"], m["p_ari_main"]
        if p < 0.05:
            how = "weakly" if ari < WEAK_ARI else "clearly"
            factors = f"{m['efa_factors']} EFA factors" if "efa_factors" in m else "EFA factors"
            text = (
                f"The semantic clusters and the {factors} agree above chance "
                f"(permutation {_p(p)}) but {how} (ARI {_dec(ari, 3)}, NMI {_dec(m['nmi_main'], 3)}, "
                f"over {m.get('efa_words_compared', 'the')} words)"
            )
            if ari < WEAK_ARI:
                text += ": what words *mean* and how they are *used together* are different things"
        else:
            text = (
                f"The semantic clusters and the EFA factors agree no better than chance "
                f"(ARI {_dec(ari, 3)}, permutation {_p(p)})"
            )
        bullets.append(text + ".")
    elif "efa_available" in m and not m["efa_available"]:
        bullets.append("Notebook 03's factors were not available, so the comparison with the EFA was skipped.")
    return _shown(bullets)


# --------------------------------------------------------------------------- 06 projective


def _by_model(flat: Mapping[str, float]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for key, value in flat.items():
        model, part = key.split("|", 1)
        out.setdefault(model, {})[part] = value
    return out


#: The validation sets of notebook 06, in the order its text names them.
VALIDATION_PARTS = ("minimal pairs", "labelled test part")


def _validation(m: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    by_scorer = _by_model(m.get("validation_auc") or {})
    order = {part: i for i, part in enumerate(VALIDATION_PARTS)}
    return {s: dict(sorted(p.items(), key=lambda kv: order.get(kv[0], len(order)))) for s, p in by_scorer.items()}


def _passes(parts: Mapping[str, float]) -> bool:
    return bool(parts) and all(v is not None and v >= VALIDATION_FLOOR for v in parts.values())


def _auc_text(parts: Mapping[str, float]) -> str:
    return _and(f"{_dec(v)} on the {part}" for part, v in parts.items())


def _icc_word(icc: float) -> str:
    """Koo & Li (2016): below 0.5 poor, 0.5-0.75 moderate, 0.75-0.9 good, above 0.9 excellent."""
    return "poorly" if icc < 0.5 else "moderately" if icc < 0.75 else "well" if icc < 0.9 else "excellently"


def _rank_correlation(a: Mapping[str, float], b: Mapping[str, float]) -> float | None:
    keys = [k for k in a if k in b]
    if len(keys) < 3:
        return None
    from scipy import stats

    rho = stats.spearmanr([a[k] for k in keys], [b[k] for k in keys])[0]
    return None if math.isnan(rho) else round(float(rho), 2)


def projective_discussion(numbers: Mapping[str, Any] | None = None) -> Markdown:
    """Notebook 06, section 8: what this run's projective data say, and the paper's findings against them."""
    m = _numbers(numbers)
    stages = m.get("training_stage") or {}
    params = m.get("params_b") or {}
    lines = []
    sizes = f" of {_span(params.values(), lambda v: f'{v:g}B', ' to ')} parameters" if params else ""
    lines.append(
        f"This run's data are {_count(m['n_completions'])} completions of {_plural(m['n_stems'], 'stem')} by "
        f"{_plural(m['n_models'], 'model')}{sizes}"
        + (f" ({_plural(m['respondents'], 'respondent')})" if "respondents" in m else "")
        + ". What they show:\n"
    )
    usable = m.get("usable_rate") or {}
    if usable:
        order = sorted(usable, key=lambda k: -usable[k])
        each = _and(f"`{k}`{f' ({stages[k]})' if k in stages else ''} {_pct(usable[k])}" for k in order)
        lines.append(
            f"* **Usable completions.** {_count(m['n_usable'])} of {_count(m['n_completions'])} "
            f"({_pct(m['n_usable'] / m['n_completions'])}) complete the stem: {each}."
        )
    validation = _validation(m)
    used, asked = m.get("scorer_used"), m.get("scorer")
    text = f"* **Which scorer drew the figures.** The {used} scorer"
    if asked and asked != used:
        text += f" (the {asked} scorer was asked for; it covered too few cases)"
    if used in validation:
        verdict = "passes" if _passes(validation[used]) else "does not pass"
        text += (
            f", which {verdict} its validation in section 3: ROC AUC {_auc_text(validation[used])} "
            f"(floor {_dec(VALIDATION_FLOOR)} on both)"
        )
    others = [name for name in validation if name != used]
    if others:
        text += "; " + "; ".join(f"the {name} scorer: {_auc_text(validation[name])}" for name in others)
    text += "."
    status = m.get("scorer_status") or {}
    if used == "stance" and status:
        read = status.get("ok", 0)
        text += (
            f" Its judge read {_count(read)} of the {_count(m['n_cases'])} scoring cases of the panel "
            f"(log-probabilities of the rubric's answer, stored in the run's judge store)"
        )
        off = {k: v for k, v in status.items() if k != "ok" and v}
        text += "; left out: " + _and(f"{_count(v)} {k}" for k, v in off.items()) + "." if off else ", none left out."
    rel = m.get("reliability") or {}
    if "agreement_icc" in rel:
        ci = m.get("agreement_icc_ci")
        interval = f" [{_dec(ci[0])}, {_dec(ci[1])}]" if ci else ""
        text += (
            f" The two scorers agree {_icc_word(rel['agreement_icc'])} on the panel: ICC(2,1) "
            f"{_dec(rel['agreement_icc'])}{interval}, Spearman {_dec(rel['agreement_spearman'])} "
            "(Koo & Li's bands for the ICC)."
        )
    lines.append(text)

    alpha, omega = rel.get("alpha") or {}, rel.get("omega_total") or {}
    if alpha:
        text = (
            f"* **Reliability.** Cronbach's alpha across stems over the whole panel is {_span(alpha.values())} by "
            f"sub-dimension (omega {_span(omega.values())}); {sum(a >= RELIABILITY_FLOOR for a in alpha.values())} "
            f"of {len(alpha)} sub-dimensions reach {_dec(RELIABILITY_FLOOR)}."
        )
        icc2k = _by_model(m.get("icc2k") or {})
        if icc2k:
            text += " Test-retest across decoding settings, ICC2k by model: " + _and(
                f"`{model}` {_span(v.values())}" for model, v in icc2k.items()
            )
            text += "."
        total = len(m.get("subdimension_scores") or {})
        reportable = m.get("reportable_scores", rel.get("reportable"))
        if reportable is not None and total:
            text += (
                f" Only the scores that reach {_dec(RELIABILITY_FLOOR)} on both (panel alpha and ICC2k) are interpreted: "
                f"{reportable} of {total} in this run"
            )
            per_model = {k: v for k, v in (m.get("reportable_by_model") or {}).items() if v}
            if per_model and reportable:
                text += " (" + _and(f"{v} of `{k}`" for k, v in per_model.items()) + ")"
            text += "."
        lines.append(text)

    subs = _by_model(m.get("subdimension_scores") or {})
    if subs:
        means = {model: sum(v.values()) / len(v) for model, v in subs.items()}
        order = sorted(means, key=lambda k: -means[k])
        text = "* **Scores.** Sub-dimension scores (0-100) by model: " + _and(
            f"`{k}` {_span(subs[k].values(), lambda v: f'{v:.0f}', '-')}" for k in order
        )
        text += ", with wide intervals (section 5)."
        rho = _rank_correlation(means, usable)
        if rho is not None:
            text += (
                f" The models' mean score and their share of usable completions have a rank correlation of {_dec(rho)}"
            )
            text += (
                ": the ranking follows how well each model completes a sentence at all, a caution against reading "
                "the profiles as values."
                if rho >= 0.8
                else "."
            )
        lines.append(text)

    verdicts = m.get("findings") or {}
    measured = m.get("findings_measured") or {}
    if verdicts:
        lines.append("\nAgainst the paper's second-hand findings (table in section 7):\n")
        unreported = [f for f, v in verdicts.items() if v.startswith("not ")]
        if len(unreported) == len(verdicts):
            lines.append(
                "* None of them can be **reported** as a finding from these data: each is either not testable on "
                "this panel or rests on scores below the reliability floor (the measured direction is kept for the record)."
            )
        for finding, verdict in verdicts.items():
            what = measured.get(finding)
            lines.append(f"* **{finding}**: {verdict}" + (f"; measured: {what}." if what else "."))
    lines.append(
        f"\nThe case-level tests in section 6 have small p-values because they pool hundreds of completions; they "
        f"describe these {_plural(m['n_models'], 'model')}, and the model (n = {m['n_models']}) is the unit any "
        "general claim would need."
    )
    return Markdown("\n".join(lines))


def projective(numbers: Mapping[str, Any] | None = None) -> Markdown:
    """Notebook 06: the closing summary (the details are section 8's)."""
    m = _numbers(numbers)
    used = m.get("scorer_used", m.get("scorer"))
    validation = _validation(m)
    if used in validation:
        verdict = "passes" if _passes(validation[used]) else "does not pass"
        scorer = (
            f"the {used} scorer drew the figures and {verdict} its validation (ROC AUC {_auc_text(validation[used])}; "
            f"floor {_dec(VALIDATION_FLOOR)})"
        )
    else:
        scorer = f"the {used} scorer drew the figures (not validated in this run)"
    total = len(m.get("subdimension_scores") or {})
    reportable = m.get("reportable_scores", 0)
    reliability = (
        f"{reportable} of {total} model × sub-dimension scores reach the reliability floor ({_dec(RELIABILITY_FLOOR)})"
    )
    verdicts = m.get("findings") or {}
    reported = [f for f, v in verdicts.items() if not v.startswith("not ")]
    if verdicts and not reported:
        paper = (
            "so none of the paper's findings is reported as a result: each is *not testable* here or "
            "*not reported: unreliable scores*, with the direction measured"
        )
    elif verdicts:
        paper = f"the paper's findings reported from these data: {_and(reported)} (section 8)"
    else:
        paper = "the paper's findings were not checked"
    return _shown([f"**Showed.** See section 8 above: {scorer}; {reliability}; {paper}."])


# --------------------------------------------------------------------------- 07 method validation


def _share_at(rows: list[Mapping[str, Any]], condition: str, key: str) -> dict[int, float]:
    return {r["respondents"]: r[key] for r in rows if r.get("condition") == condition}


def method_validation(numbers: Mapping[str, Any] | None = None) -> Markdown:
    """Notebook 07: recovery at the simulated paper scale, by panel size, and across models."""
    m = _numbers(numbers)
    bullets = []
    if "paper_scale_factors_found" in m:
        congruence = m.get("paper_scale_congruence") or []
        right = m.get("paper_scale_factor_count_right")
        scale = (
            f" ({_count(m['sim_respondents'])} respondents, {m['sim_words']} words, three strong factors)"
            if "sim_respondents" in m
            else ""
        )
        recovered = right and congruence and min(congruence) >= 0.95
        bullets.append(
            f"**Showed.** On one simulated panel{scale} the pipeline "
            + ("recovers" if recovered else "does not fully recover")
            + f" the planted structure: {_plural(m['paper_scale_factors_found'], 'factor')} kept"
            + (f", congruence {_span(congruence, joiner=' to ')}" if congruence else "")
            + " (recovery: three factors and every congruence ≥ 0.95)."
        )
    rows = m.get("recovery") or []
    needed = m.get("respondents_needed") or {}
    if rows:
        parts = []
        for condition in dict.fromkeys(r["condition"] for r in rows):
            shares = _share_at(rows, condition, "factor_count_right")
            each = ", ".join(f"{_pct(v)} at {_count(k)}" for k, v in sorted(shares.items()))
            need = needed.get(condition)
            parts.append(
                f"{condition} loadings: {each}; "
                + (f"{_count(need)} respondents needed" if need else "no size simulated is enough")
            )
        replications = rows[0].get("replications")
        bullets.append(
            "Panels whose parallel analysis kept exactly three factors, by number of respondents"
            + (f" ({_plural(replications, 'panel')} per size)" if replications else "")
            + ": "
            + "; ".join(parts)
            + " (needed: the right count and every congruence ≥ 0.95 in at least 80% of panels)."
        )
    grid = m.get("model_grid") or {}
    if grid.get("paper_pooled_factors") is not None and grid.get("paper_within_factors") is not None:
        cell = m.get("model_grid_paper_cell")
        shape = f" ({cell[0]} models × {cell[1]} respondents each)" if cell else ""
        bullets.append(
            f"With a vocabulary of its own per model, in the simulated cell nearest the paper's panel{shape} the "
            f"pooled analysis finds {_num(grid['paper_pooled_factors'])} "
            f"factor{'' if grid['paper_pooled_factors'] == 1 else 's'} on average and fully recovers the "
            f"planted three in {_pct(grid['paper_pooled_recovered'])} of panels; within models it finds "
            f"{_num(grid['paper_within_factors'])} and recovers them in {_pct(grid['paper_within_recovered'])}."
        )
    needed_models = [r for r in (m.get("models_needed") or []) if r.get("models_needed") is not None]
    if needed_models:
        bullets.append(
            "Models needed for recovery: "
            + "; ".join(
                f"{r['level']}, {r['per_model']} per model: {r['models_needed']}"
                for r in sorted(needed_models, key=lambda r: (r["level"], r["per_model"]))
            )
            + " (the other cells of the grid: none of the model counts simulated)."
        )
    elif "models_needed" in m:
        bullets.append("No cell of the simulated model grid recovers the planted structure in 80% of panels.")
    return _shown(bullets)


# --------------------------------------------------------------------------- 08 human values


FRAMEWORK_NAMES = {
    "schwartz": "Schwartz's values",
    "moral_foundations": "the moral foundations",
    "valuelex": "the ValueLex taxonomy",
}


def human_values(numbers: Mapping[str, Any] | None = None) -> Markdown:
    """Notebook 08: coverage of the lexicon by the human frameworks, and whether their structure is testable."""
    m = _numbers(numbers)
    words, usage = m.get("coverage_words") or {}, m.get("coverage_usage") or {}
    bullets = []
    if words:
        human = [k for k in words if k != "valuelex"]
        order = sorted(human, key=lambda k: -words[k])
        each = _and(
            f"{FRAMEWORK_NAMES.get(k, k)} {_pct(words[k])} of the words ({_pct(usage[k])} of their use)" for k in order
        )
        text = (
            f"**Showed.** Of the lexicon's {m['lexicon_words']} words, the share closer to a category than everyday "
            f"non-value words are (the calibrated threshold): {each}"
        )
        if "valuelex" in words:
            text += f"; the ValueLex taxonomy, as a reference, {_pct(words['valuelex'])}"
        bullets.append(text + ".")
    if "uncovered_by_both" in m:
        top = m.get("top_uncovered") or []
        bullets.append(
            f"{_plural(m['uncovered_by_both'], 'word')} {_is(m['uncovered_by_both'])} covered by neither human framework"
            + (f"; the most used: {', '.join(top[:6])}" if top else "")
            + "."
        )
    empty = {k: v for k, v in (m.get("empty_categories") or {}).items() if v}
    if "empty_categories" in m:
        bullets.append(
            "Human categories no lexicon word names: "
            + ("; ".join(f"{k}: {', '.join(v)}" for k, v in empty.items()) if empty else "none")
            + "."
        )
    testable = m.get("cfa_models_testable")
    if testable is not None:
        fits = m.get("cfa") or {}
        failed = m.get("cfa_not_estimable") or {}
        n = m.get("cfa_respondents")
        if not testable:
            bullets.append(
                f"None of the {m.get('cfa_models', len(failed))} confirmatory models is testable on {_count(n)} respondents "
                f"({m.get('cfa_estimator', '')}; every one is not estimable, not fitted or just identified), so which "
                "framework fits best is *not testable* here."
            )
        else:
            each = _and(
                f"{name} (CFI {_dec(f['cfi'], 3)}, RMSEA {_dec(f['rmsea'], 3)})"
                for name, f in fits.items()
                if f.get("cfi") is not None and f.get("rmsea") is not None
            )
            bullets.append(
                f"{_plural(testable, 'confirmatory model')} of {testable + len(failed)} {_is(testable)} testable on "
                f"{_count(n)} respondents: {each}; the others are not estimable (the table says why)."
            )
    return _shown(bullets)


# --------------------------------------------------------------------------- 09 figure 1


def figure1(numbers: Mapping[str, Any] | None = None) -> Markdown:
    """Notebook 09: where the lexicon's words fall in the taxonomy, and how many placements are weak."""
    m = _numbers(numbers)
    per = m.get("words_per_dimension") or {}
    total = m.get("words_placed") or sum(per.values())
    order = sorted(per, key=lambda k: -per[k])
    each = _and(f"{k} {_count(per[k])} ({_pct(per[k] / total)})" for k in order)
    missing = [d for d in DIMENSIONS if d not in per]
    text = f"**Showed.** Placed by meaning, the lexicon's {_count(total)} words fall in {each}"
    text += f", none in {_and(missing)}" if missing else ""
    weak = m.get("weak_placements")
    if weak is not None:
        text += (
            f"; {_count(weak)} placements ({_pct(weak / total)}) are weak (a small margin over the runner-up), "
            "drawn hollow on the map"
        )
    usage = m.get("usage_share_by_subdimension") or {}
    bullets = [text + "."]
    if usage:
        order = sorted(usage, key=lambda k: -usage[k])
        bullets.append(
            "Share of the lexicon's use by sub-dimension: " + _and(f"{k} {_pct(usage[k])}" for k in order) + "."
        )
    bullets.append(
        "This is our data drawn the paper's way, not a copy of the paper's figure, whose underlying numbers the paper "
        "does not give."
    )
    return _shown(bullets)
