"""The reader-facing outputs: HTML tutorial index (checked in headless Chromium), figure index, manifest."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import IN_CI, run_notebook
from valuelex import report


def test_figure_index_lists_literal_save_calls(tmp_path: Path) -> None:
    found = report.artefacts_by_notebook()
    names = {a["name"] for a in found}
    assert {"elicitation_parse_status", "lexicon_funnel", "lexicon_top_words"} <= names
    first = next(a for a in found if a["name"] == "lexicon_funnel")
    assert first["notebook"] == "02_lexicon.ipynb" and first["cell"] >= 2
    (tmp_path / "lexicon_funnel.png").write_bytes(b"x")
    index = report.write_figure_index(tmp_path).read_text()
    assert "| `lexicon_funnel` | [png](lexicon_funnel.png) |" in index


def test_manifest_records_provenance(processed_pipeline: dict, tmp_path: Path) -> None:
    build = Path(processed_pipeline["out"])
    (build / "timings.tsv").write_text("01_elicitation\t3\n02_lexicon\t2\n")
    manifest = report.build_manifest(build, ["-p", "mode", "replay"])
    assert len(manifest["git_commit"]) in (0, 40)
    assert manifest["packages"]["factor_analyzer"] == "0.5.1"
    store = manifest["response_stores"]["elicitation"]
    assert store["final_records"] == 1800 and store["load_issues"] == []
    assert set(store["per_model"]) == {
        "smollm2-135m-instruct",
        "gemma3-270m-base",
        "qwen2.5-coder-0.5b-instruct",
        "qwen2.5-coder-1.5b-instruct",
    }
    assert all(m["completion_tokens"] > 0 for m in store["per_model"].values())
    nb01 = manifest["notebooks"]["01_elicitation"]
    assert nb01["recorded"]["respondents"] == 120 and nb01["seconds"] == 3
    assert "mode" in nb01["default_parameters"]
    assert any(k.startswith("configs/models/") for k in manifest["configs_sha256"])
    json.dumps(manifest)  # serialisable


def test_html_tutorial_renders_in_chromium(processed_pipeline: dict, tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if IN_CI:
            pytest.fail("chromium is required in CI (.ci/run installs it)")
        pytest.skip("chromium not installed (apt-get install chromium)")
    executed = Path(processed_pipeline["out"]) / "02_lexicon.ipynb"
    html_dir = tmp_path / "html"
    subprocess.run(
        [
            str(Path(sys.executable).parent / "jupyter"),
            "nbconvert",
            "--to",
            "html",
            "--output-dir",
            str(html_dir),
            str(executed),
        ],
        check=True,
        capture_output=True,
    )
    index = report.write_html_index(html_dir, timings=tmp_path / "none.tsv")
    assert "02_lexicon.html" in index.read_text()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]  # fmt: skip
    dom = subprocess.run(
        [chromium, *flags, "--dump-dom", (html_dir / "02_lexicon.html").as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    assert "Lexicon cleaning" in dom
    assert dom.count("<img") >= 3  # the funnel and top-word figures are embedded
    shot = tmp_path / "page.png"
    subprocess.run(
        [chromium, *flags, f"--screenshot={shot}", "--window-size=1200,2000", (html_dir / "02_lexicon.html").as_uri()],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    assert shot.stat().st_size > 20_000  # a real page, not a blank one


def test_lexicon_tables_are_deterministic(processed_pipeline: dict, tmp_path: Path) -> None:
    """Rerunning notebooks 01-02 gives byte-identical tables."""
    env = {
        "VALUELEX_PROCESSED": str(tmp_path / "processed"),
        "VALUELEX_FIGURES": str(tmp_path / "figures"),
    }
    for d in env.values():
        Path(d).mkdir()
    run_notebook("01_elicitation", tmp_path, {}, env)
    run_notebook("02_lexicon", tmp_path, {}, env)
    first = Path(processed_pipeline["VALUELEX_PROCESSED"])
    compared = 0
    for table in sorted(Path(env["VALUELEX_PROCESSED"]).glob("*.csv")):
        other = first / table.name
        assert hashlib.sha256(table.read_bytes()).hexdigest() == hashlib.sha256(other.read_bytes()).hexdigest(), (
            table.name
        )
        compared += 1
    assert compared >= 8
    for fig in ("lexicon_funnel.png", "lexicon_funnel.pdf"):
        assert (Path(env["VALUELEX_FIGURES"]) / fig).read_bytes() == (
            Path(processed_pipeline["VALUELEX_FIGURES"]) / fig
        ).read_bytes()
