"""Human value systems against the LLM value lexicon (the paper's step 0, notebook 08).

The paper opens with the claim that human value systems do not fit LLMs. We test it on our own
lexicon: every lexicon word is compared, by embedding similarity, with the categories of two human
frameworks held as data in ``configs/human_values.yaml`` (Schwartz's ten basic values; the moral
foundations). A category is represented by the unit centroid of its marker words (our choice of
words); a lexicon word gets its most similar category and counts as *covered* when that similarity
reaches a threshold. The default threshold is calibrated, per framework, on everyday English words
that name no value (``neutral_words``): a word is covered when it is closer to a human category than
``null_quantile`` (95%) of those words are. The frameworks' own marker words, each held out of its
category's centroid, show how many true value words pass the same threshold.

Then the Schwartz structure is fitted by CFA on the respondents x words incidence matrix, with the
lexicon words assigned to each value as its indicators (``cfa_indicators``), for comparison with the
ValueLex taxonomy's models (``valuelex.psychometrics.cfa``). The figures are drawn by
:mod:`valuelex.plots.human_values`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from .core import paths
from .core.precision import choose

CONFIG = paths.CONFIGS / "human_values.yaml"
Embed = Callable[[Sequence[str]], np.ndarray]


# --------------------------------------------------------------------------- the frameworks as data


@dataclass(frozen=True)
class Framework:
    """One human value framework: its categories with definitions and marker words.

    ``markers`` has one row per (category, marker word); ``categories`` one row per category
    (columns category, higher_order, definition, n_markers), in the order of the config.
    """

    key: str
    name: str
    source: str
    categories: pd.DataFrame
    markers: pd.DataFrame

    @property
    def category_names(self) -> list[str]:
        return self.categories["category"].tolist()


def load_frameworks(path: str | Path = CONFIG, include_provisional: bool = False) -> dict[str, Framework]:
    """The frameworks of ``configs/human_values.yaml`` (provisional categories such as Liberty only if asked)."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    frameworks = {}
    for key, body in data["frameworks"].items():
        cats, marks = [], []
        for name, cat in body["categories"].items():
            if cat.get("provisional", False) and not include_provisional:
                continue
            words = [str(w) for w in cat["markers"]]
            cats.append(
                {
                    "category": name,
                    "higher_order": cat.get("higher_order", name),
                    "definition": cat["definition"],
                    "n_markers": len(words),
                }
            )
            marks += [{"category": name, "marker": w} for w in words]
        frameworks[key] = Framework(
            key=key,
            name=body["name"],
            source=body["source"],
            categories=pd.DataFrame(cats),
            markers=pd.DataFrame(marks),
        )
    return frameworks


def taxonomy_framework(taxonomy: dict, level: str = "subdimension") -> Framework:
    """The ValueLex taxonomy as a framework, its example words as markers (the reference for the coverage).

    ``taxonomy`` is ``configs/taxonomy.yaml`` as read by ``valuelex.instruments.taxonomy.load_taxonomy()``:
    ``dimensions: {Dimension: {Sub-dimension: [marker, ...]}}``, each marker a word or a mapping
    with a ``marker`` key (its ``variants`` are not used: a category is its example words).
    ``level`` is ``subdimension`` (six categories, each under its dimension) or ``dimension`` (three).
    """
    if level not in ("subdimension", "dimension"):
        raise ValueError(f"level must be 'subdimension' or 'dimension', got {level!r}")
    rows = [
        {"dimension": dim, "subdimension": sub, "marker": str(item["marker"] if isinstance(item, dict) else item)}
        for dim, subs in taxonomy["dimensions"].items()
        for sub, items in subs.items()
        for item in items
    ]
    table = pd.DataFrame(rows)
    order = list(dict.fromkeys(table[level]))
    parent = dict(zip(table[level], table["dimension"], strict=True))
    categories = pd.DataFrame(
        {
            "category": order,
            "higher_order": [parent[c] for c in order],
            "definition": [f"ValueLex {level} (the paper's taxonomy)" for _ in order],
            "n_markers": [int((table[level] == c).sum()) for c in order],
        }
    )
    markers = pd.DataFrame({"category": table[level].to_numpy(), "marker": table["marker"].str.lower().to_numpy()})
    name = "ValueLex taxonomy (reference)"
    return Framework("valuelex", name, "Biedma et al. 2024 (example words: authors' lab site)", categories, markers)


def load_neutral_words(path: str | Path = CONFIG) -> list[str]:
    """Everyday English words that name no value (the null for the coverage threshold)."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    return [str(w) for w in data["neutral_words"]]


def read_lexicon(folder: str | Path) -> pd.DataFrame:
    """The lexicon written by notebook 02 into ``folder`` (columns word, count, respondents, models, example_raws)."""
    path = Path(folder) / "lexicon.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run notebooks/02_lexicon.ipynb first")
    return pd.read_csv(path, keep_default_na=False)


# --------------------------------------------------------------------------- similarity and assignment


def _unit(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=float)
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return matrix / np.where(norms == 0, 1, norms)


def prototypes(framework: Framework, embed: Embed) -> pd.DataFrame:
    """Unit centroid of each category's marker vectors (rows: categories in config order)."""
    vectors = _unit(embed(framework.markers["marker"].tolist()))
    labels = framework.markers["category"].to_numpy()
    rows = [_unit(vectors[labels == c].mean(axis=0)) for c in framework.category_names]
    return pd.DataFrame(np.stack(rows), index=framework.category_names)


def similarities(words: Sequence[str], framework: Framework, embed: Embed) -> pd.DataFrame:
    """Cosine similarity of each word (rows) to each category's prototype (columns)."""
    proto = prototypes(framework, embed)
    vectors = _unit(embed(list(words)))
    return pd.DataFrame(vectors @ proto.to_numpy().T, index=list(words), columns=proto.index)


def assign(words: Sequence[str], framework: Framework, embed: Embed, threshold: float) -> pd.DataFrame:
    """Each word's most similar category, its similarity, the runner-up, the margin and ``covered``.

    ``covered`` is ``similarity >= threshold``. Columns: word, category, similarity, second,
    second_similarity, margin, covered (one row per word, in the order given).
    """
    sims = similarities(words, framework, embed)
    values = sims.to_numpy()
    choice = choose(values)  # near-ties: the first category in the framework's order, not noise
    rows = np.arange(len(values))
    best = values[rows, choice.best]
    return pd.DataFrame(
        {
            "word": list(words),
            "category": sims.columns.to_numpy()[choice.best],
            "similarity": best,
            "second": sims.columns.to_numpy()[choice.second],
            "second_similarity": values[rows, choice.second],
            "margin": choice.margin,
            "covered": best >= threshold,
        }
    )


def word_table(assignments: dict[str, pd.DataFrame], lexicon: pd.DataFrame) -> pd.DataFrame:
    """One row per lexicon word: its usage and, per framework, its category, similarity and coverage."""
    out = lexicon[["word", "count", "respondents"]].copy()
    for key, table in assignments.items():
        part = table[["word", "category", "similarity", "covered"]].rename(
            columns={c: f"{key}_{c}" for c in ("category", "similarity", "covered")}
        )
        out = out.merge(part, on="word", how="left")
    return out


# --------------------------------------------------------------------------- the threshold


@dataclass(frozen=True)
class Calibration:
    """The coverage threshold of one framework and the two distributions behind it.

    ``null``: best-category similarity of each neutral word. ``markers``: similarity of each marker
    word to its own category's centroid built without it (leave-one-out). ``threshold`` is the
    ``quantile`` of ``null``; ``false_positive_rate`` and ``marker_pass_rate`` are the shares of
    neutral and of held-out marker words at or above it.
    """

    framework: str
    threshold: float
    quantile: float
    null: pd.Series
    markers: pd.Series

    @property
    def false_positive_rate(self) -> float:
        return float((self.null >= self.threshold).mean())

    @property
    def marker_pass_rate(self) -> float:
        return float((self.markers >= self.threshold).mean())

    def summary(self) -> dict[str, float | str]:
        return {
            "framework": self.framework,
            "threshold": self.threshold,
            "quantile": self.quantile,
            "neutral_median": float(self.null.median()),
            "neutral_pass_rate": self.false_positive_rate,
            "marker_median": float(self.markers.median()),
            "marker_pass_rate": self.marker_pass_rate,
        }


def held_out_marker_similarity(framework: Framework, embed: Embed) -> pd.Series:
    """Similarity of each marker word to its own category's centroid built without it (index: marker)."""
    vectors = _unit(embed(framework.markers["marker"].tolist()))
    labels = framework.markers["category"].to_numpy()
    out = np.empty(len(labels))
    for i, label in enumerate(labels):
        others = (labels == label) & (np.arange(len(labels)) != i)
        out[i] = vectors[i] @ _unit(vectors[others].mean(axis=0))
    return pd.Series(out, index=framework.markers["marker"].to_numpy(), name="similarity")


def calibrate(
    framework: Framework, embed: Embed, neutral_words: Sequence[str] | None = None, quantile: float = 0.95
) -> Calibration:
    """The threshold above which a word is closer to a human category than ``quantile`` of neutral words."""
    neutral = list(neutral_words) if neutral_words is not None else load_neutral_words()
    null = similarities(neutral, framework, embed).max(axis=1).rename("similarity")
    return Calibration(
        framework=framework.key,
        threshold=float(np.quantile(null.to_numpy(), quantile)),
        quantile=quantile,
        null=null,
        markers=held_out_marker_similarity(framework, embed),
    )


# --------------------------------------------------------------------------- coverage


def usage_weights(lexicon: pd.DataFrame, weight: str = "count") -> pd.Series:
    """Usage of each lexicon word (index: word): its ``count`` (uses) or ``respondents``."""
    if weight not in ("count", "respondents"):
        raise ValueError(f"weight must be 'count' or 'respondents', got {weight!r}")
    return lexicon.set_index("word")[weight].astype(float)


def coverage(assignment: pd.DataFrame, lexicon: pd.DataFrame, weight: str = "count") -> dict[str, float]:
    """How much of the lexicon a framework covers: by words and weighted by usage.

    Returns n_words, n_covered, share_words (covered / words) and share_usage (usage of covered
    words / usage of all words).
    """
    usage = usage_weights(lexicon, weight).reindex(assignment["word"]).fillna(0.0).to_numpy()
    covered = assignment["covered"].to_numpy(dtype=bool)
    n = len(assignment)
    return {
        "n_words": n,
        "n_covered": int(covered.sum()),
        "share_words": float(covered.mean()) if n else float("nan"),
        "share_usage": float(usage[covered].sum() / usage.sum()) if usage.sum() > 0 else float("nan"),
    }


def coverage_table(
    assignments: dict[str, pd.DataFrame],
    lexicon: pd.DataFrame,
    thresholds: dict[str, float],
    names: dict[str, str] | None = None,
    weight: str = "count",
) -> pd.DataFrame:
    """One row per framework: threshold, words, covered words, share by words and by usage."""
    names = names or {}
    rows = []
    for key, table in assignments.items():
        rows.append(
            {"framework": names.get(key, key), "threshold": thresholds[key], **coverage(table, lexicon, weight)}
        )
    return pd.DataFrame(rows)


def coverage_curve(
    assignments: dict[str, pd.DataFrame],
    lexicon: pd.DataFrame,
    thresholds: Sequence[float] = tuple(np.round(np.arange(0.30, 0.701, 0.01), 2)),
    names: dict[str, str] | None = None,
    weight: str = "count",
) -> pd.DataFrame:
    """Coverage of each framework as the threshold varies (columns framework, threshold, share_words, share_usage)."""
    names = names or {}
    rows = []
    for key, table in assignments.items():
        for t in thresholds:
            moved = table.assign(covered=table["similarity"] >= t)
            cov = coverage(moved, lexicon, weight)
            rows.append({"framework": names.get(key, key), "threshold": float(t), **cov})
    return pd.DataFrame(rows)


def uncovered_words(assignment: pd.DataFrame, lexicon: pd.DataFrame, n: int | None = 20) -> pd.DataFrame:
    """The words a framework misses, by usage (count, then respondents, then word), with their nearest category."""
    usage = lexicon[["word", "count", "respondents"]]
    missed = assignment.loc[~assignment["covered"], ["word", "category", "similarity"]].merge(usage, on="word")
    missed = missed.sort_values(["count", "respondents", "word"], ascending=[False, False, True], kind="mergesort")
    missed = missed.rename(columns={"category": "nearest_category"})
    missed = missed[["word", "count", "respondents", "nearest_category", "similarity"]].reset_index(drop=True)
    return missed if n is None else missed.head(n)


def uncovered_across(assignments: dict[str, pd.DataFrame], lexicon: pd.DataFrame, n: int | None = 20) -> pd.DataFrame:
    """The words that no framework covers, by usage."""
    covered_any = pd.concat([a.set_index("word")["covered"] for a in assignments.values()], axis=1).any(axis=1)
    combined = pd.DataFrame({"word": covered_any.index, "covered": covered_any.to_numpy()})
    combined["category"], combined["similarity"] = "", np.nan
    out = uncovered_words(combined, lexicon, n)
    return out[["word", "count", "respondents"]]


def category_counts(
    assignment: pd.DataFrame, framework: Framework, lexicon: pd.DataFrame, weight: str = "count"
) -> pd.DataFrame:
    """Per human category: covered lexicon words assigned to it, their usage share and the top words.

    Categories that receive no covered word have ``n_words`` 0: the human values LLMs do not name.
    """
    usage = usage_weights(lexicon, weight)
    covered = assignment[assignment["covered"]].copy()
    covered["usage"] = usage.reindex(covered["word"]).fillna(0.0).to_numpy()
    total = float(usage.reindex(assignment["word"]).fillna(0.0).sum())
    rows = []
    for cat in framework.category_names:
        part = covered[covered["category"] == cat].sort_values(["usage", "word"], ascending=[False, True])
        rows.append(
            {
                "category": cat,
                "higher_order": framework.categories.set_index("category").loc[cat, "higher_order"],
                "n_words": len(part),
                "usage_share": float(part["usage"].sum() / total) if total else float("nan"),
                "top_words": ", ".join(part["word"].head(6)),
            }
        )
    return pd.DataFrame(rows)


def empty_categories(counts: pd.DataFrame) -> list[str]:
    """Human categories that no covered lexicon word was assigned to."""
    return counts.loc[counts["n_words"] == 0, "category"].tolist()


# --------------------------------------------------------------------------- CFA of a human framework


def cfa_indicators(
    assignment: pd.DataFrame,
    incidence: pd.DataFrame,
    framework: Framework,
    level: str = "category",
    min_indicators: int = 3,
    max_indicators: int | None = 3,
    min_users: int = 3,
) -> tuple[dict[str, list[str]], pd.DataFrame]:
    """Indicators of each factor for a CFA of the framework on the incidence matrix.

    A factor is a category (``level="category"``, e.g. Schwartz's ten values) or a higher-order
    group (``level="higher_order"``). Its indicators are the covered lexicon words assigned to it
    that are columns of ``incidence`` used by at least ``min_users`` and at most all-but-
    ``min_users`` units (a word nobody or everybody uses has no variance), the most similar first,
    at most ``max_indicators``. Factors with fewer than ``min_indicators`` are dropped.

    Returns the kept factors (factor -> words) and a table of every factor with its candidate and
    kept counts and, when dropped, why.
    """
    if level not in ("category", "higher_order"):
        raise ValueError(f"level must be 'category' or 'higher_order', got {level!r}")
    cats = framework.categories
    groups = pd.Series(
        (cats[level] if level == "higher_order" else cats["category"]).to_numpy(), index=cats["category"]
    )
    factors = list(dict.fromkeys(groups.tolist()))
    users = incidence.astype(bool).sum(axis=0)
    usable = set(users[(users >= min_users) & (users <= len(incidence) - min_users)].index)
    table = assignment[assignment["covered"]].copy()
    table["factor"] = table["category"].map(groups)
    kept: dict[str, list[str]] = {}
    rows = []
    for factor in factors:
        part = table[table["factor"] == factor].sort_values(["similarity", "word"], ascending=[False, True])
        candidates = part["word"].tolist()
        words = [w for w in candidates if w in usable]
        if max_indicators is not None:
            words = words[:max_indicators]
        ok = len(words) >= min_indicators
        if ok:
            kept[factor] = words
        rows.append(
            {
                "factor": factor,
                "assigned_words": len(candidates),
                "usable_words": len([w for w in candidates if w in usable]),
                "indicators": ", ".join(words) if ok else "",
                "kept": ok,
                "reason": "" if ok else f"fewer than {min_indicators} usable words",
            }
        )
    return kept, pd.DataFrame(rows)


def cfa_models(
    name: str,
    indicators: dict[str, list[str]],
    framework: Framework | None = None,
    second_order: bool = False,
    notes: Sequence[str] = (),
):
    """A ``valuelex.psychometrics.cfa.ModelSpec``: correlated factors measured by their indicator words.

    With ``second_order``, each factor (a category of ``framework``) loads on its higher-order
    group; groups with fewer than two kept categories cannot be identified and are left out,
    with their categories, and the model notes which.
    """
    from .psychometrics.cfa import ModelSpec

    notes = list(notes)
    if not second_order:
        return ModelSpec(name, dict(indicators), notes=notes)
    if framework is None:
        raise ValueError("a second-order model needs the framework (for the higher-order groups)")
    group_of = dict(zip(framework.categories["category"], framework.categories["higher_order"], strict=True))
    groups: dict[str, list[str]] = {}
    for factor in indicators:
        groups.setdefault(group_of[factor], []).append(factor)
    factors, higher = {}, {}
    for group, members in groups.items():
        if len(members) < 2:
            notes.append(f"{group} left out: {len(members)} first-order factor(s) with indicators")
            continue
        higher[group] = members
        factors.update({f: indicators[f] for f in members})
    return ModelSpec(name, factors, higher, notes=notes)


def dropped_notes(indicator_table: pd.DataFrame) -> list[str]:
    """Notes for a model: the factors ``cfa_indicators`` dropped and why."""
    dropped = indicator_table[~indicator_table["kept"]]
    return [f"{f} left out: {r}" for f, r in zip(dropped["factor"], dropped["reason"], strict=True)]


#: The CFA models built from the embedding assignment: (name, family, framework key, level, second order).
#: ``SECOND_ORDER_MODEL`` (Schwartz's values under the four higher-order values) is added on request: with
#: ~40 binary indicators it is the slowest fit (about 10 s here) and, on 120 respondents, the least stable.
CFA_MODELS = (
    ("Schwartz: basic values", "human", "schwartz", "category", False),
    ("Schwartz: 4 higher-order values", "human", "schwartz", "higher_order", False),
    ("Moral foundations", "human", "moral_foundations", "category", False),
    ("ValueLex: 6 sub-dimensions, words by similarity", "ValueLex", "valuelex", "category", False),
    ("ValueLex: 3 dimensions, words by similarity", "ValueLex", "valuelex", "higher_order", False),
)

SECOND_ORDER_MODEL = ("Schwartz: basic under higher-order (second order)", "human", "schwartz", "category", True)


def assignment_models(
    assignments: dict[str, pd.DataFrame],
    frameworks: dict[str, Framework],
    incidence: pd.DataFrame,
    min_indicators: int = 3,
    max_indicators: int | None = 3,
    min_users: int = 3,
    second_order: bool = False,
    models: Sequence[tuple[str, str, str, str, bool]] = CFA_MODELS,
) -> tuple[list, dict[str, str], pd.DataFrame]:
    """The CFA models of ``models`` whose framework is assigned, with indicators chosen by ``cfa_indicators``.

    ``second_order`` adds ``SECOND_ORDER_MODEL``. Adds a one-factor baseline on the words of the
    first model. Returns the ``ModelSpec``s, the
    family of each model (human, ValueLex, baseline) and a table of every factor's indicators.
    """
    from .psychometrics.cfa import one_factor_model

    specs, families, tables = [], {}, {}
    models = [*models, SECOND_ORDER_MODEL] if second_order else list(models)
    for name, family, key, level, is_second_order in models:
        if key not in assignments:
            continue
        kept, table = cfa_indicators(
            assignments[key], incidence, frameworks[key], level, min_indicators, max_indicators, min_users
        )
        specs.append(cfa_models(name, kept, frameworks[key], is_second_order, dropped_notes(table)))
        families[name] = family
        tables[name] = table
    if specs and specs[0].words:
        baseline = one_factor_model(specs[0].words, f"one factor on the words of '{specs[0].name}' (baseline)")
        specs.append(baseline)
        families[baseline.name] = "baseline"
    indicators = pd.concat(tables).droplevel(1).reset_index(names="model") if tables else pd.DataFrame()
    return specs, families, indicators


def testable(comparison: pd.DataFrame) -> pd.Series:
    """Models whose fit can be tested: estimated, with degrees of freedom left (df > 0).

    A just-identified model (df = 0, e.g. one factor with three words) reproduces the data exactly:
    its CFI of 1 says nothing about fit.
    """
    return comparison["chi2"].notna() & (comparison["df"].astype(float) > 0)


def fit_summary(comparison: pd.DataFrame, digits: int = 4) -> dict[str, dict[str, float]]:
    """chi2, df, CFI, TLI, RMSEA and SRMR of each testable model of a ``cfa.comparison_table`` (for ``record``)."""
    fitted = comparison[testable(comparison)]
    keys = ("chi2", "df", "CFI", "TLI", "RMSEA", "SRMR")
    return {
        row["model"]: {k.lower(): round(float(row[k]), digits) if pd.notna(row[k]) else None for k in keys}
        for _, row in fitted.iterrows()
    }
