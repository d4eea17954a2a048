"""figures/INDEX.md describes every artefact: each name a notebook saves has an entry in configs/figure_index.yaml."""

from __future__ import annotations

import yaml

from valuelex.app import manifest
from valuelex.core import paths


def test_every_saved_artefact_is_described() -> None:
    about = yaml.safe_load((paths.CONFIGS / "figure_index.yaml").read_text(encoding="utf-8"))
    saved = {a["name"] for a in manifest.artefacts_by_notebook()}
    assert saved, "no save_figure/save_table call found in the notebooks"
    missing = sorted(name for name in saved if not str(about.get(name, {}).get("what", "")).strip())
    assert missing == [], f"add a 'what' to configs/figure_index.yaml for: {missing}"
    no_paper = sorted(name for name in saved if not str(about.get(name, {}).get("paper", "")).strip())
    assert no_paper == [], f"say which part of the paper (or 'ours') in configs/figure_index.yaml for: {no_paper}"


def test_index_rows_have_descriptions(tmp_path) -> None:
    index = manifest.write_figure_index(tmp_path).read_text(encoding="utf-8")
    rows = [line for line in index.splitlines() if line.startswith("| `")]
    assert rows and all(not line.rstrip().endswith("|  |") for line in rows)


def test_save_calls_found_however_deeply_nested() -> None:
    source = (
        "figures.save_figure(\n"
        "    hv.plot_coverage_curve(curve, {names[k]: t for k, t in thresholds.items()}), 'human_values_coverage_curve'\n"
        ")\n"
        "save_table(pd.concat({n: c for n, c in counts.items()}).reset_index(names='f'), \"human_values_categories\")\n"
        "save_figure(fig, name)  # not a literal name: not an artefact of the index\n"
    )
    assert manifest._save_calls(source) == [
        ("figure", "human_values_coverage_curve"),
        ("table", "human_values_categories"),
    ]
    assert manifest._save_calls("%matplotlib inline\nsave_table(df, 'x')") == [("table", "x")]


def test_no_description_without_an_artefact() -> None:
    about = yaml.safe_load((paths.CONFIGS / "figure_index.yaml").read_text(encoding="utf-8"))
    saved = {a["name"] for a in manifest.artefacts_by_notebook()}
    assert sorted(set(about) - saved) == []  # a stale entry describes a file no notebook writes
