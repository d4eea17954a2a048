"""The small dress rehearsal (configs/runs/rehearsal_small.yaml) end to end, and what it can recover.

``valuelex run`` runs notebooks 01-06 live against the simulated population: the cards are
``provider: simulated``, so the run starts the simulated server itself and stops it (nobody starts
it here). Then ``valuelex.simulated.stages.recover`` compares every stage with what was planted.

What the small panel (6 models x 8 settings = 48 respondents) can and cannot show, measured
(docs/rehearsal.md, "Recovery of every stage"; the numbers in the comments are this panel's):

* the run starts and stops the server, and every answer is the population's;
* **EFA congruence >= 0.90 within models is not reachable on 48 respondents**: at the planted
  three factors the within-model congruence is 0.10-0.70 (42 within-model degrees of freedom for
  81 words), although parallel analysis keeps the planted 3 within models (over resamples of the
  respondents: 1 in 46%, 0 in 28%, 2 in 20%, 3 in 6%) and 2 pooled. The issue's assertion
  (>= 0.90 within models) holds on the paper-sized panel (528 respondents; docs/rehearsal.md), not
  here. What this panel asserts instead: the run's own pooled solution matches planted factors
  (congruence >= 0.6 for each factor it kept; measured 0.711, 0.796), so a change that scrambles the
  factor analysis fails here; and the report gives notebook 03's factor counts with their spread;
* **the planted CFA is not estimable on 48 respondents** (24 binary indicators, 48 units: a Heywood
  case and a factor correlation beyond 1, as lavaan with std.lv = TRUE; before the WLSMV fallback our
  optimiser reported no convergence in some runs); the test asserts that the report
  says so and why, and that the wrong taxonomy is rejected or not estimable either;
* **projective rank correlation >= 0.8 holds for what the completions show, not for the embedding
  scorer** (the small rehearsal runs no LLM judge: 792 judge calls took 11 min on the paper sample).
  The stances the completions show (their planted truth, a perfect scorer's reading) correlate 0.971
  with the planted stances over the 36 model x sub-dimension cells, and the test asserts >= 0.9; the
  embedding scorer reaches 0.345 (case ROC AUC 0.716, high against low), and the test asserts >= 0.2
  and AUC >= 0.65, i.e. that its scores follow the planted stances at all. The real judge reads the
  cases with AUC 0.997 (docs/rehearsal.md, "The judge").
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from valuelex.core import paths
from valuelex.llm.store import ResponseStore
from valuelex.settings import load_run
from valuelex.simulated import Population
from valuelex.simulated.recovery import ask_of
from valuelex.simulated.stages import moved_taxonomy, recover, wrong_taxonomy
from valuelex.stages import Run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("rehearsal")
    run = yaml.safe_load((paths.CONFIGS / "runs" / "rehearsal_small.yaml").read_text())
    run.update(name="rehearsal_ci", output=str(root / "out"), raw=str(root / "raw"))
    run_file = root / "rehearsal_ci.yaml"
    run_file.write_text(yaml.safe_dump(run, sort_keys=False))
    only = ["01", "02", "03", "04", "05", "06"]  # 07-09 do not read the panel's answers
    command = [sys.executable, "-m", "valuelex", "run", str(run_file), "--only", *only, "--yes"]
    done = subprocess.run(command, cwd=paths.ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    settings = load_run(run_file)
    population = Population.load()
    report = recover(population, Run.of(settings))
    return {"root": root, "settings": settings, "report": report, "population": population, "run_file": run_file}


def test_the_run_started_the_simulated_server_and_stopped_it(rehearsal) -> None:
    root = rehearsal["root"]
    store = ResponseStore(root / "raw" / "elicitation", announce=False)
    finals = list(store.final_records())
    assert len(finals) == 720 and {r["status"] for r in finals} == {"ok"}
    population = rehearsal["population"]
    for record in finals[::37]:
        assert population.answer(ask_of(record["request"])).text == record["text"]
    projective = list(ResponseStore(root / "raw" / "projective", announce=False).final_records())
    assert len(projective) == 48 * 30
    left = subprocess.run(["pgrep", "-f", "valuelex.simulated.server"], capture_output=True, text=True).stdout.split()
    assert not [p for p in left if Path(f"/proc/{p}/cwd").exists() and _is_ours(int(p))]


def _is_ours(pid: int) -> bool:
    """A simulated server started by this test's run would have died with it; none may be our descendant."""
    import os

    while pid > 1:
        if pid == os.getpid():
            return True
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            return False
    return False


def test_efa_finds_planted_factors_as_far_as_48_respondents_allow(rehearsal) -> None:
    m = rehearsal["report"].metrics()
    assert m["efa_planted_words"] >= 60  # measured 79
    kept = [c for c in m["efa_pooled_congruence_run"] if np.isfinite(c)]
    assert len(kept) >= 2 and min(kept) >= 0.6  # measured 0.685, 0.816 (2 factors kept of 3 planted)
    # the paper-sized panel's assertion (>= 0.90 within models) cannot hold here: the report says why
    assert min(m["efa_within_congruence"]) < 0.9
    assert any("within-model degrees of freedom" in line for line in rehearsal["report"].lost)
    stability = m["efa_count_stability"]  # notebook 03's count with its spread, e.g. "3 (3 in 60% of subsamples, ...)"
    assert set(stability) == {"pooled", "within models"} and all("% of " in t for t in stability.values())


def test_the_cfa_report_says_whether_the_planted_taxonomy_is_estimable(rehearsal) -> None:
    report = rehearsal["report"]
    m = report.metrics()
    assert m["cfa_words"] >= 18  # up to 8 indicators per planted dimension
    table = report.cfa_table
    assert list(table.index) == ["planted taxonomy", "wrong taxonomy (dealt across)", "wrong taxonomy (a third moved)"]
    if m["cfa_planted_estimable"]:
        assert m["cfa_wrong_rejected"]
    else:  # measured on 48 respondents: a Heywood case; the report names it
        assert any(line.startswith("CFA: the planted taxonomy is not estimable") for line in report.lost)


def test_clusters_and_projective_follow_the_planted_truth(rehearsal) -> None:
    m = rehearsal["report"].metrics()
    assert m["clusters_nearest_share"] >= 0.6  # measured 0.747, 0.765
    assert m["projective_scorer"] == "embedding"
    assert m["projective_spearman_ceiling"] >= 0.9  # measured 0.971: the completions carry the planted stances
    assert m["projective_spearman"] >= 0.2  # measured 0.345 (embedding scorer; >= 0.8 needs the judge)
    assert m["projective_case_auc_embedding"] >= 0.65  # measured 0.716


def test_the_report_prints_every_stage_as_tables(rehearsal) -> None:
    text = str(rehearsal["report"])
    for heading in ("Summary", "EFA: Tucker congruence", "CFA: the planted taxonomy", "Semantic clusters",
                    "Projective scores", "First stages. Parser"):  # fmt: skip
        assert heading in text
    assert "{'" not in text


def test_the_recover_command_prints_the_same_report(rehearsal) -> None:
    command = [sys.executable, "-m", "valuelex.simulated", "recover", str(rehearsal["run_file"])]
    done = subprocess.run(command, cwd=paths.ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == str(rehearsal["report"]).strip()


def test_the_wrong_taxonomy_deals_every_dimension_across_the_factors() -> None:
    planted = {"A": ["a1", "a2", "a3", "a4"], "B": ["b1", "b2", "b3"], "C": ["c1", "c2", "c3"]}
    wrong = wrong_taxonomy(planted)
    assert sorted(w for ws in wrong.values() for w in ws) == sorted(w for ws in planted.values() for w in ws)
    for words in wrong.values():
        assert len({w[0] for w in words}) == 3  # every wrong factor mixes all three planted dimensions
    assert pd.Series({k: len(v) for k, v in wrong.items()}).sum() == 10
    moved = moved_taxonomy(planted)
    assert moved["moved A"] == ["a1", "a2", "a4", "c3"] and moved["moved B"] == ["a3", "b1", "b2"]
