"""Prose that follows the run (issue 18.5): no notebook's markdown states a number of the default run,
and the closing findings are written from the run's own numbers.

The end-to-end test makes a run on another panel (three of the local panel's four models, a smaller
decoding grid), replayed offline from the committed data/raw/, exactly as a researcher's run is made
(`valuelex run FILE --yes`, outputs outside the project). Every number in its generated findings must
be one the run recorded or wrote, and the verdicts must follow its output tables.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from valuelex import findings
from valuelex.core import paths
from valuelex.core.display import recorded

#: The default run's own numbers, as the notebooks' markdown used to state them (the committed local
#: panel: 120 respondents, 1,800 answers, 6,332 descriptors of 1,736 terms, a lexicon of 143 words, 123
#: of them analysed, KMO 0.88, 480 completions of which 434 usable, 1,355 judged cases, AUCs, ICCs...).
#: None of them may appear in a source notebook's markdown: a run on another panel would read them
#: under its own, different outputs. (The paper's numbers, 525 respondents and 190+ words, are allowed.)
DEFAULT_RUN_NUMBERS = [
    "120", "1,800", "1800", "6,332", "6332", "1,736", "143", "123", "0.88", "480", "434", "1,355", "1355",
    "0.40", "0.72", "0.99", "0.83", "0.76", "0.64", "0.68", "0.60-0.82", "0.65-0.84", "57-72", "48-56",
    "41-52", "24-40", "71%", "95-100%", "11.7", "5.0", "7 of 24", "nine in ten",
]  # fmt: skip

#: Each notebook's closing call, and the findings function it calls.
CLOSING = {
    "01_elicitation": "elicitation",
    "02_lexicon": "lexicon",
    "03_efa": "efa",
    "04_cfa": "cfa",
    "05_semantic_clusters": "semantic",
    "06_projective": "projective",
    "07_method_validation": "method_validation",
    "08_human_values": "human_values",
    "09_figure1": "figure1",
}


def _cells(path: Path, kind: str) -> list[dict]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return [c for c in nb["cells"] if c["cell_type"] == kind]


def _source(cell: dict) -> str:
    return "".join(cell["source"])


# --------------------------------------------------------------------------- the source notebooks


def _prose(markdown: str) -> str:
    """The claims of a markdown cell: without code spans (settings and commands to try, `sizes=[60, 120]`)
    and without the clauses that report another study's numbers (the paper, GPLA)."""
    text = re.sub(r"`[^`]*`", "", markdown)
    clauses = re.split(r"(?<=[.;:])\s+", text)
    return "\n".join(c for c in clauses if not re.search(r"\[paper\]|\bpaper\b.*\breports\b", c))


def test_no_markdown_cell_states_a_number_of_the_default_run() -> None:
    found = []
    for path in sorted(paths.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        for cell in _cells(path, "markdown"):
            text = _prose(_source(cell))
            for number in DEFAULT_RUN_NUMBERS:
                if re.search(rf"(?<![\w.,-]){re.escape(number)}(?![\w%]|[.,]\d)", text):
                    found.append(f"{path.name} cell {cell['id']}: {number}")
            for verdict in ("passes its validation", "none of the confirmatory models is estimable"):
                if verdict in text.lower():
                    found.append(f"{path.name} cell {cell['id']}: states the verdict '{verdict}'")
    assert not found, "markdown states the default run's numbers:\n" + "\n".join(found)


def test_every_notebook_closes_with_its_generated_findings() -> None:
    for name, function in CLOSING.items():
        cells = json.loads((paths.NOTEBOOKS / f"{name}.ipynb").read_text(encoding="utf-8"))["cells"]
        last = cells[-1]
        assert last["cell_type"] == "code", f"{name}: the last cell is not the findings call"
        assert f"findings.{function}()" in _source(last), name
        assert "hide-input" in last["metadata"].get("tags", []), name  # the tutorial shows the prose only
        assert callable(getattr(findings, function))
        assert cells[-2]["cell_type"] == "markdown" and "What this notebook showed" in _source(cells[-2])
    cells = json.loads((paths.NOTEBOOKS / "06_projective.ipynb").read_text(encoding="utf-8"))["cells"]
    section8 = [i for i, c in enumerate(cells) if _source(c).startswith("## 8.")]
    assert section8 and "findings.projective_discussion()" in _source(cells[section8[0] + 1])


# --------------------------------------------------------------------------- verdicts follow the numbers


def test_the_validation_verdict_is_computed_against_the_floor() -> None:
    numbers = {
        "scorer": "stance", "scorer_used": "stance", "reportable_scores": 3,
        "subdimension_scores": {f"m|s{i}": 50.0 for i in range(6)},
        "validation_auc": {"stance|minimal pairs": 0.91, "stance|labelled test part": 0.86},
        "findings": {"Competence is valued highest": "supported"},
    }  # fmt: skip
    text = findings.projective(numbers).data
    assert "passes its validation" in text and "3 of 6" in text and "Competence is valued highest" in text
    numbers["validation_auc"]["stance|labelled test part"] = findings.VALIDATION_FLOOR - 0.01
    assert "does not pass its validation" in findings.projective(numbers).data


def test_the_cfa_verdict_names_the_estimable_models() -> None:
    numbers = {
        "cfa_units": 600, "estimator": "WLSMV", "held_out_split": True, "models_fitted": 2, "n_adequate": True,
        "models_estimable": ["taxonomy: 3 dimensions"], "good_fit_models": [],
        "model_status": {"taxonomy: 3 dimensions": "estimable", "EFA-derived": "not estimable: not converged"},
        "cfi_taxonomy_3": 0.912, "rmsea_taxonomy_3": 0.051, "srmr_taxonomy_3": 0.07,
    }  # fmt: skip
    text = findings.cfa(numbers).data
    assert "1 model of the 2 fitted is estimable (taxonomy: 3 dimensions)" in text
    assert "EFA-derived: not converged" in text and "CFI 0.912" in text
    assert "does not meet the cut-offs" in text and "not testable" not in text
    numbers.update(models_estimable=[], model_status={"taxonomy: 3 dimensions": "not estimable: x"})
    assert "the taxonomy is *not testable*" in findings.cfa(numbers).data


# --------------------------------------------------------------------------- a run on another panel


SUBSET = ["smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct"]


def _subset_run(root: Path) -> Path:
    """A run file for three of the local panel's models and a smaller grid, with small stage settings."""
    local = yaml.safe_load((paths.PANELS / "local.yaml").read_text())
    local.update(name="subset", models=SUBSET)
    local["decoding"].update(temperature=[0.2, 0.7, 1.2], top_p=[0.7, 0.95, 1.0])
    projective = yaml.safe_load((paths.PANELS / "projective_local.yaml").read_text())
    projective.update(name="subset_projective", models=SUBSET)
    (root / "subset.yaml").write_text(yaml.safe_dump(local, sort_keys=False))
    (root / "subset_projective.yaml").write_text(yaml.safe_dump(projective, sort_keys=False))
    run = yaml.safe_load((paths.CONFIGS / "runs" / "default.yaml").read_text())
    run["output"] = str(root / "out")
    run["elicitation"] = {**run["elicitation"], "panel": str(root / "subset.yaml")}
    run["projective"] = {**run["projective"], "panel": str(root / "subset_projective.yaml"), "n_boot": 50}
    run["efa"] = {"n_boot": 5, "parallel_iter": 5, "n_boot_within": 3, "count_resamples": 3}
    run["semantic"] = {"n_permutations": 99}
    run["simulation"] = {
        "n_words": 60, "n_respondents": 200, "sizes": [100], "replications": 1, "parallel_iter": 3,
        "word_sizes": [120], "model_counts": [4], "per_model": [10], "model_grid_parallel_iter": 3,
    }  # fmt: skip
    path = root / "subset_run.yaml"
    path.write_text(yaml.safe_dump(run, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def subset_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The subset run, made as a researcher makes a run (`valuelex run FILE --yes`); its output folder."""
    root = tmp_path_factory.mktemp("subset")
    run_file = _subset_run(root)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VALUELEX_") or k == "VALUELEX_MODELS_DIR"}
    done = subprocess.run(
        [sys.executable, "-m", "valuelex", "run", str(run_file), "--yes"],
        cwd=paths.ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return root / "out"


NUMBER = re.compile(r"(?<![\w.])-?\d[\d,]*(?:\.\d+)?(?:e-?\d+)?%?")


def _leaves(value: Any) -> tuple[list[float], list[int]]:
    """Every number in a recorded value, and the size of every list or mapping in it."""
    numbers: list[float] = []
    sizes: list[int] = []
    if isinstance(value, bool) or value is None:
        return numbers, sizes
    if isinstance(value, str):  # a reason as lavaan gives it: "smallest eigenvalue 1.01e-17"
        return [float(t.replace(",", "")) for t in NUMBER.findall(value) if not t.endswith("%")], sizes
    if isinstance(value, (int, float)):
        return ([float(value)] if math.isfinite(value) else []), sizes
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        sizes.append(len(value))
        for item in value:
            n, s = _leaves(item)
            numbers += n
            sizes += s
    return numbers, sizes


def _texts(value: object) -> list[str]:
    """Every recorded string (a count described with its spread is recorded as the text shown)."""
    if isinstance(value, str):
        return [value]
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    return [text for item in items for text in _texts(item)]


def _allowed(numbers: dict, derived: list[float] = ()) -> set[str]:
    """How a recorded number may be written: as a count, with 1-3 decimals, or as a percentage
    (of a share, or of one recorded count over another); the sizes of recorded lists; the stated
    floors and the paper's numbers [paper]."""
    values, sizes = _leaves(numbers)
    values += list(derived)
    out = {str(n) for n in range(11)}
    out |= {
        t for text in _texts(numbers) for t in NUMBER.findall(text)
    }  # "4 (3 in 74% of seeds)" as recorded  # small counts ("3 of 4 factors") are checked against the outputs below
    for v in values:
        out |= {f"{round(v):,}", f"{round(v)}", f"{v:.1f}", f"{v:.2f}", f"{v:.3f}", f"{v:g}", f"{v:.0f}", f"{v:.2e}"}
        if 0 <= v <= 1:
            out.add(f"{v:.0%}")
    counts = sorted({v for v in values if v.is_integer() and v > 0})
    for a in [v for v in values if v >= 0]:
        for b in counts:
            if a <= b:
                out.add(f"{a / b:.0%}")
    out |= {f"{s:,}" for s in sizes}
    fixed = [findings.VALIDATION_FLOOR, findings.RELIABILITY_FLOOR, findings.CONGRUENCE_MATCH]
    fixed += [findings.LARGE_ETA_SQUARED, findings.SILHOUETTE_STRUCTURE, 0.95]
    out |= {f"{v:.2f}" for v in fixed} | {f"{v:g}" for v in fixed}
    out |= {"80%", "100", "0-100", "525", "190", "32", "17", "2,1", "2"}  # [paper], ICC(2,1), "0-100", "η²"
    return out


def _numbers_in(text: str) -> list[str]:
    text = re.sub(r"`[^`]*`", "", text)  # model and panel names (qwen2.5-coder-1.5b-instruct)
    text = re.sub(r"\b(notebook|section) \d+", "", text)  # references to other notebooks and sections
    return [t.rstrip(",") for t in NUMBER.findall(text)]


def _shown_findings(executed: Path) -> list[str]:
    """The markdown the findings cells displayed in an executed notebook."""
    out = []
    for cell in _cells(executed, "code"):
        if "findings." in _source(cell):
            for output in cell.get("outputs", []):
                if "text/markdown" in output.get("data", {}):
                    out.append("".join(output["data"]["text/markdown"]))
    return out


@pytest.mark.slow
def test_findings_of_a_run_on_another_panel_are_its_own(subset_run: Path) -> None:
    from scipy import stats

    build, processed, figures = subset_run / "build", subset_run / "data" / "processed", subset_run / "figures"
    # the one number the findings derive rather than read: notebook 06's rank correlation of the models'
    # mean score with their share of usable completions, computed here from the output tables
    completions = pd.read_csv(processed / "projective_completions.csv")
    scores = pd.read_csv(processed / "projective_scores.csv")
    sub = scores[scores["level"] == "subdimension"]
    means = sub.groupby("model")["score"].mean()
    usable = completions.groupby("model")["usable"].mean().reindex(means.index)
    derived = {"06_projective": [float(stats.spearmanr(means, usable)[0])]}
    for name, function in CLOSING.items():
        executed = build / f"{name}.ipynb"
        numbers = recorded(executed)
        shown = _shown_findings(executed)
        functions = [function] + (["projective_discussion"] if name == "06_projective" else [])
        expected = [getattr(findings, f)(numbers).data for f in functions]
        assert sorted(shown) == sorted(expected), f"{name}: the notebook shows other findings than its numbers give"
        if name == "05_semantic_clusters":  # the lower end of the silhouettes' span: best minus spread
            derived[name] = [numbers["silhouette_best"] - numbers["silhouette_spread"]]
        allowed = _allowed(numbers, derived.get(name, []))
        for text in expected:
            assert text.strip(), name
            stray = [t for t in _numbers_in(text) if t not in allowed and t.rstrip("%") not in allowed]
            assert not stray, f"{name}: numbers not recorded by the run: {stray}\n{text}"

    # the numbers and verdicts against the run's output tables
    respondents = pd.read_csv(processed / "respondents.csv")
    responses = pd.read_csv(processed / "responses.csv")
    assert sorted(respondents["model"].unique()) == sorted(SUBSET)
    text = findings.elicitation(recorded(build / "01_elicitation.ipynb")).data
    assert f"{len(responses):,} answers" in text and f"has {len(respondents)} respondents from 3 models" in text
    assert "1,800" not in text and "120 respondents" not in text

    text = findings.lexicon(recorded(build / "02_lexicon.ipynb")).data
    lexicon = pd.read_csv(processed / "lexicon.csv")
    raw = pd.read_csv(processed / "descriptors_raw.csv")
    assert f"Of {len(raw):,} raw descriptors" in text and f"{len(lexicon)} words survive" in text

    efa = recorded(build / "03_efa.ipynb")
    text = findings.efa(efa).data
    word_factors = pd.read_csv(processed / "efa_word_factors.csv")
    assert f"finds {efa['parallel_n_factors']} factor" in text and efa["n_factors"] == word_factors["factor"].nunique()
    assert f"Pooled over the {len(respondents)} units" in text and "between the 3 models" in text

    table = pd.read_csv(figures / "cfa_model_comparison.csv")
    text = findings.cfa(recorded(build / "04_cfa.ipynb")).data
    estimable = table.loc[table["estimable"], "model"].tolist()
    fitted = int((~table["notes"].fillna("").str.startswith("not fitted")).sum())
    assert (f"{len(estimable)} model" in text) if estimable else (f"none of the {fitted} models fitted" in text)
    for model in table.loc[~table["estimable"], "model"]:
        assert model in text  # every model that is not estimable is named, with its reason

    silhouettes = pd.read_csv(figures / "semantic_silhouette.csv")["silhouette"]
    text = findings.semantic(recorded(build / "05_semantic_clusters.ipynb")).data
    assert f"{silhouettes.min():.2f} to {silhouettes.max():.2f}" in text or f"{silhouettes.max():.3f}" in text

    projective = recorded(build / "06_projective.ipynb")
    discussion = findings.projective_discussion(projective).data
    assert (
        f"{len(completions):,} completions" in discussion and f"{int(completions['usable'].sum()):,} of" in discussion
    )
    assert sorted(completions["model"].unique()) == sorted(SUBSET) and "gemma" not in discussion
    validation = pd.read_csv(figures / "projective_scorer_validation.csv")
    used = projective["scorer_used"]
    passed = all(
        projective["validation_auc"][f"{used}|{part}"] >= findings.VALIDATION_FLOOR
        for part in ("minimal pairs", "labelled test part")
    )
    assert not validation.empty and ("does not pass" not in discussion) == passed
    assert f"{int(sub['reportable'].sum())} of {len(sub)}" in findings.projective(projective).data

    cover = pd.read_csv(figures / "human_values_coverage.csv").set_index("framework")
    text = findings.human_values(recorded(build / "08_human_values.ipynb")).data
    assert f"Schwartz's values {cover.loc['Schwartz basic values', 'share_words']:.0%} of the words" in text

    placement = pd.read_csv(processed / "taxonomy_placement.csv")
    text = findings.figure1(recorded(build / "09_figure1.ipynb")).data
    for dimension, n in placement["dimension"].value_counts().items():
        assert f"{dimension} {n} (" in text
