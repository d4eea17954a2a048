"""The reader-facing outputs: HTML tutorial index (checked in headless Chromium), figure index, manifest."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import IN_CI, run_notebook
from valuelex.app import manifest as run_manifest
from valuelex.app import tutorial
from valuelex.settings import load_run


def test_figure_index_lists_literal_save_calls(tmp_path: Path) -> None:
    found = run_manifest.artefacts_by_notebook()
    names = {a["name"] for a in found}
    assert {"elicitation_parse_status", "lexicon_funnel", "lexicon_top_words"} <= names
    first = next(a for a in found if a["name"] == "lexicon_funnel")  # notebook 02 is a stage: declared there
    assert first["notebook"] == "02_lexicon.ipynb" and first["made_by"].startswith("`valuelex/stages/lexicon.py`")
    efa = next(a for a in found if a["name"] == "efa_scree")  # notebook 03 is a stage too
    assert efa["notebook"] == "03_efa.ipynb" and efa["made_by"].startswith("`valuelex/stages/efa.py`")
    (tmp_path / "lexicon_funnel.png").write_bytes(b"x")
    index = run_manifest.write_figure_index(tmp_path).read_text()
    assert "| `lexicon_funnel` | [png](lexicon_funnel.png) |" in index


def test_manifest_records_provenance(processed_pipeline: dict, tmp_path: Path) -> None:
    build = Path(processed_pipeline["out"])
    (build / "timings.tsv").write_text("01_elicitation\t3\n02_lexicon\t2\n")
    manifest = run_manifest.build_manifest(build, load_run("default"), {})
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
    assert nb01["passed_parameters"] == {"overrides": {}}
    assert manifest["settings"]["efa"]["seed"] == 20240419 and manifest["run_file"].endswith("default.yaml")
    assert any(k.startswith("configs/models/") for k in manifest["configs_sha256"])
    json.dumps(manifest)  # serialisable


def test_manifest_describes_the_runs_own_store_and_its_base(tmp_path: Path) -> None:
    """A researcher's run: its manifest describes its own store (and, under it, the committed dataset),
    not data/raw/ alone (issue 19.4)."""
    from tests.test_runstore import record
    from valuelex.llm.runstore import open_store
    from valuelex.stages import Folders

    (tmp_path / "mine.yaml").write_text(f"mode: live\noutput: {tmp_path / 'out'}\n", encoding="utf-8")
    run = load_run(tmp_path / "mine.yaml")
    open_store(run.raw_dir / "elicitation", run.base_dir / "elicitation").append(record(0))
    folders = Folders.of(run)
    path = run_manifest.write_manifest(tmp_path / "run_manifest.json", tmp_path, run, {}, folders.raw, folders.base)
    manifest = json.loads(path.read_text())
    assert manifest["response_store"]["own"] == str(tmp_path / "out" / "raw")
    assert manifest["response_store"]["base"] == "data/raw" and manifest["committed_run"] is False
    own = manifest["response_stores"]["elicitation"]
    assert own["final_records"] == 1 and set(own["per_model"]) == {"m"} and list(own["files"]) == ["m.jsonl"]
    assert own["base"]["final_records"] == 1800 and own["answers_available"] == 1801
    assert manifest["response_stores"]["judge"]["final_records"] == 0  # nothing of its own; the base's judge calls
    assert manifest["response_stores"]["judge"]["base"]["final_records"] > 0
    committed = run_manifest.build_manifest(
        tmp_path, load_run("default"), {}
    )  # the committed run: its store is the dataset
    assert committed["response_store"] == {
        "own": "data/raw",
        "base": None,
        "note": "the run's store is the committed dataset",
    }
    assert committed["response_stores"]["elicitation"]["base"] is None


def _chromium() -> str:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if IN_CI:
            pytest.fail("chromium is required in CI (.ci/run installs it)")
        pytest.skip("chromium not installed (apt-get install chromium)")
    return chromium


def test_html_tutorial_reads_as_a_tutorial_in_chromium(processed_pipeline: dict, tmp_path: Path) -> None:
    """The student's view: a landing page with the reading order, pages linked to each other and to the
    glossary, no bookkeeping, and each notebook ending with what it showed and what to try next."""
    chromium = _chromium()
    index = tutorial.build(Path(processed_pipeline["out"]), tmp_path / "html", {"01_elicitation": 8.0})
    html_dir = index.parent
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]  # fmt: skip

    def dom(page: str) -> str:
        return subprocess.run(
            [chromium, *flags, "--dump-dom", (html_dir / page).as_uri()],
            capture_output=True, text=True, timeout=120, check=True,
        ).stdout  # fmt: skip

    landing = dom("index.html")
    assert "Reading order" in landing and "glossary.html" in landing
    for page in ("01_elicitation.html", "02_lexicon.html"):  # the notebooks this session executed
        assert f'href="{page}"' in landing
    assert "Clean the raw descriptors into the lexicon" in landing  # the notebook's own summary
    assert "8 s" in landing

    page = dom("02_lexicon.html")
    assert "Lexicon cleaning" in page
    assert page.count("<img") >= 3  # the funnel and top-word figures are embedded
    assert 'href="01_elicitation.html"' in page  # previous notebook
    assert "On this page" in page  # table of contents
    assert "What this notebook showed, and what to try next" in page
    assert "save_lexicon" not in page  # the bookkeeping cell is hidden
    assert "vnd.valuelex.metrics" not in page and "injected-parameters" not in page
    assert "/.venv/" not in page  # no absolute paths of this machine in warnings
    assert tutorial.check_page(page) == []  # and none of the other things a student should not see

    for name in ("index.html", "01_elicitation.html", "02_lexicon.html", "glossary.html"):
        text = (html_dir / name).read_text(encoding="utf-8")
        for link in re.findall(r'href="([^"#:]+\.html)"', text):
            assert (html_dir / link).exists(), f"{name} links to missing {link}"
    glossary = dom("glossary.html")
    for term in ("Temperature", "ROC AUC", "Tetrachoric"):
        assert term.lower() in glossary.lower(), term

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
