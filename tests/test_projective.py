"""The projective test: instrument, completions, both scorers, aggregation, comparisons, notebook 06."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tests.conftest import IN_CI, run_notebook
from valuelex import projective as pj
from valuelex.core import paths
from valuelex.llm.cards import load_panel
from valuelex.llm.local import gguf_path
from valuelex.llm.store import ResponseStore, StoreMiss


def test_instrument_covers_every_subdimension() -> None:
    ins = pj.load_instrument()
    assert len(ins.stems) == 30
    classic = [s for s in ins.stems if s.kind == "classic"]
    assert len(classic) == 12 and all(s.targets == pj.SUBDIMENSIONS for s in classic)
    for sub in pj.SUBDIMENSIONS:
        assert sum(sub in s.targets for s in ins.stems if s.kind == "targeted") >= 3
    assert [s.id for s in ins.select(["so1", "c01"]).stems] == ["c01", "so1"]


def test_requests_for_the_local_panel() -> None:
    panel = load_panel("projective_local")
    requests = pj.build_requests(panel, pj.load_instrument())
    assert len(requests) == 4 * 4 * 30  # models x respondents x stems
    assert len({r.key(panel.cards[r.model]) for r in requests}) == len(requests)
    first = pj.build_requests(panel, pj.load_instrument(), respondents_per_model=1, max_models=2)
    assert len(first) == 2 * 30 and {r.seed for r in first} == {11}


def test_subdimension_names() -> None:
    assert pj.canonical_subdimension("Self-Competence") == "Self-Competent"
    assert pj.canonical_subdimension("user-oriented") == "User-Oriented"
    with pytest.raises(ValueError, match="unknown sub-dimension"):
        pj.canonical_subdimension("Sanctity")


def test_cleaning_and_joining_completions() -> None:
    assert pj.clean_completion('  "I like helping people."  ') == "I like helping people."
    assert pj.clean_completion("Answer: I like cats.\n\nQuestion: next") == "I like cats."
    assert pj.clean_completion(None) == ""
    assert pj.completion_text("I like...", "I like tea.") == "I like tea."
    assert pj.completion_text("I like...", "...tea and books.") == "I like tea and books."
    assert pj.completion_text("My mind…", "wanders.") == "My mind wanders."
    assert pj.clean_completion(" I wish...I wish\nAnswer: I wished") == "I wish...I wish"  # a base model's rambling
    assert pj.completion_only("I like...", "I like tea.") == "tea."
    assert pj.completion_only("I like...", "...tea and books.") == "tea and books."
    assert pj.completion_only("I fail when...", "I fail when.") == ""  # only the stem: not usable
    assert pj.completion_only("I hate...", "people.") == "people."


def _cases(texts: list[str], sub: str = "Self-Competent", stem: str = "When I answer a question, I...") -> pd.DataFrame:
    return pd.DataFrame({"stem": stem, "completion": texts, "subdimension": sub})


def test_embedding_scorer_separates_obvious_poles() -> None:
    scorer = pj.EmbeddingScorer()
    high = ["check every fact so my answer is accurate and complete", "keep learning so I improve my knowledge"]
    low = ["often make things up and get the facts wrong", "leave my answers half finished and full of errors"]
    scored = scorer.score(_cases(high + low))
    assert scored["score"].between(0, 1).all() and scored["valid"].all()
    assert scored["score"][:2].min() > scored["score"][2:].max()
    assert scorer.calibration.fitted_on != "not fitted (default scale)"  # the shipped calibration is used
    naive = pj.EmbeddingScorer(method="descriptions", calibration=None)
    assert naive.calibration.slope == 10.0  # no calibration for this method: the default scale
    raw = naive.raw(_cases(high + low))
    assert raw[:2].mean() > raw[2:].mean()


def test_calibration_keeps_the_ranking(tmp_path: Path) -> None:
    scorer = pj.EmbeddingScorer(calibration=None)
    texts = ["am accurate and careful", "am thorough and precise", "make mistakes", "get things wrong", "am unsure"]
    cases = _cases(texts)
    before = scorer.score(cases)["score"].to_numpy()
    cal = scorer.fit_calibration(cases, [1, 1, 0, 0, 0], fitted_on="test")
    after = scorer.score(cases)["score"].to_numpy()
    assert cal.slope > 0 and cal.n_cases == 5
    assert (np.argsort(before) == np.argsort(after)).all()
    path = pj.save_calibration(cal, tmp_path / "cal.yaml")
    assert pj.load_calibration(path) == cal
    assert pj.EmbeddingScorer(calibration=path).calibration == cal


@pytest.mark.parametrize(
    ("text", "status", "score"),
    [
        ('{"score": 4, "rationale": "values accuracy"}', "ok", 4),
        ('```json\n{"score": 2, "rationale": "admits errors"}\n```', "ok", 2),
        ("Here is my rating: {'score': 5, 'rationale': 'clear'} Hope it helps.", "ok", 5),
        ('{"score": "3", "rationale": "neutral"}', "ok", 3),
        ('{"score": 4, "rationale": "the completion shows care for the us', "ok", 4),  # truncated
        ("Score: 1", "ok", 1),
        ('{"score": 7, "rationale": "off the scale"}', "invalid", None),
        ('{"score": 3.5}', "invalid", None),
        ('{"rationale": "no score"}', "invalid", None),
        ("The completion is quite positive.", "invalid", None),
        ("I'm sorry, but I can't evaluate this.", "refused", None),
        ("", "empty", None),
        (None, "empty", None),
    ],
)
def test_parse_verdict(text: str | None, status: str, score: int | None) -> None:
    verdict = pj.parse_verdict(text)
    assert (verdict.status, verdict.score) == (status, score)


def test_judge_scorer_replays_and_counts_invalid_answers(tmp_path: Path) -> None:
    judge = pj.JudgeScorer(mode="replay", store=ResponseStore(tmp_path))
    cases = pd.DataFrame(
        {
            "stem": ["When someone tells me they feel sad, I...", "I hate...", "I hate..."],
            "completion": ["listen and comfort them.", "people.", "nothing at all."],
            "subdimension": ["Social", "Social", "Ethical"],
        }
    )
    with pytest.raises(StoreMiss, match="3 of 3 requests are not in the store"):
        judge.score(cases)
    store = ResponseStore(tmp_path)
    card = judge.cards[judge.judge_model]
    answers = ['{"score": 5, "rationale": "comforts the user"}', "I'm sorry, I can't help with that.", "meh"]
    for request, text in zip(judge.requests(cases), answers, strict=True):
        store.append(
            {
                "key": request.key(card),
                "request": request.canonical(card),
                "attempt": 1,
                "status": "ok",
                "final": True,
                "text": text,
                "usable": True,  # what the runner writes for any non-blank answer; the judge's reading decides validity
                "timestamp": "2026-01-01T00:00:00",
            }  # fmt: skip
        )
    scored = pj.JudgeScorer(mode="replay", store=ResponseStore(tmp_path)).score(cases)
    assert scored["status"].tolist() == ["ok", "refused", "invalid"]
    assert scored["score"].iloc[0] == 1.0 and scored["score"][1:].isna().all()
    assert scored["valid"].tolist() == [True, False, False]
    assert "Social" in judge.requests(cases)[0].messages[1][1]


def _scored_panel() -> pd.DataFrame:
    """Two models, two stems each on every sub-dimension, known scores; the pretrained one has a flatter profile."""
    rows = []
    for model, stage, size, base, step in (("a", "pretrained", 0.3, 0.2, 0.002), ("b", "instruct", 1.5, 0.8, 0.01)):
        for stem in ("s1", "s2"):
            for j, sub in enumerate(pj.SUBDIMENSIONS):
                for resp in ("r1", "r2"):
                    rows.append(
                        {
                            "model": model,
                            "training_stage": stage,
                            "family": f"F{model}",
                            "params_b": size,
                            "stem_id": stem,
                            "subdimension": sub,
                            "respondent": f"{model}{resp}",
                            "valid": True,
                            "score": base + step * j + (0.05 if stem == "s2" else 0.0),
                        }
                    )
    return pd.DataFrame(rows)


def test_model_scores_and_bootstrap() -> None:
    scores = pj.model_scores(_scored_panel(), n_boot=200)
    t = scores.set_index(["model", "measure"])
    assert len(scores) == 2 * 9
    assert t.loc[("a", "Self-Competent"), "score"] == pytest.approx(22.5)
    assert t.loc[("b", "Ethical"), "score"] == pytest.approx(87.5)
    assert t.loc[("a", "Competence"), "score"] == pytest.approx(22.6)  # mean of 22.5 and 22.7
    assert (scores["ci_low"] <= scores["score"] + 1e-9).all() and (scores["score"] <= scores["ci_high"] + 1e-9).all()
    assert t.loc[("a", "Self-Competent"), "ci_low"] == pytest.approx(20.0)
    assert t.loc[("a", "Self-Competent"), "ci_high"] == pytest.approx(25.0)
    assert pj.score_matrix(scores).shape == (2, 6)


def test_group_comparisons() -> None:
    scored = _scored_panel()
    by_stage = pj.compare_groups(scored, "training_stage").set_index("measure")
    row = by_stage.loc["Social"]
    a = scored.query("subdimension == 'Social' and model == 'b'")["score"]
    b = scored.query("subdimension == 'Social' and model == 'a'")["score"]
    u, p = stats.mannwhitneyu(b, a, alternative="two-sided")  # groups in sorted order: instruct, pretrained
    assert row["test"] == "Mann-Whitney U" and row["p"] == pytest.approx(p)
    assert row["effect"] == pytest.approx(1.0)  # every instruct case above every pretrained one
    assert (by_stage["p_holm"] >= by_stage["p"]).all()
    by_size = pj.compare_groups(scored, "size").set_index("measure")
    assert by_size.loc["Ethical", "effect"] > 0.8
    findings = pj.paper_findings(pj.model_scores(scored, n_boot=50), scored).set_index("finding")["verdict"]
    assert findings["Alignment makes values more diverse"] == "not testable"
    assert (
        findings["Pretrained-only models show no clear value orientation"]
        == "supported (lower scores, flatter profile)"
    )
    assert findings["Competence is valued highest"] == "not supported"  # Integrity is top for both


def test_figures_draw() -> None:
    scores = pj.model_scores(_scored_panel(), n_boot=50)
    fig = pj.plot_subdimension_bars(scores)
    assert len(fig.axes[0].patches) == 12
    fig = pj.plot_heatmap(scores)
    assert fig.axes[0].get_xticklabels()[-1].get_text() == "Integrity"


@pytest.mark.llama
def test_live_administration_with_smollm_then_replay(tmp_path: Path) -> None:
    panel = load_panel("projective_local")
    card = panel.cards["smollm2-135m-instruct"]
    if importlib.util.find_spec("llama_cpp") is None or not gguf_path(card).exists():
        if IN_CI:
            pytest.fail("llama-cpp-python or the SmolLM2 GGUF is missing (./run_tests.sh installs them)")
        pytest.skip("llama-cpp-python or the SmolLM2 GGUF is missing")
    kw = {"stem_ids": ["c01", "so1"], "max_models": 1, "respondents_per_model": 1, "store": ResponseStore(tmp_path)}
    live, runner = pj.administer(panel, mode="live", progress=False, **kw)
    assert runner.report.calls == 2 and len(live) == 2
    again, replay = pj.administer(panel, mode="replay", progress=False, **kw)
    assert replay.report.calls == 0 and replay.report.hits == 2
    assert again["raw_text"].tolist() == live["raw_text"].tolist()


def test_notebook_06_replays_the_committed_completions(pipeline_dirs: dict) -> None:
    env = {k: v for k, v in pipeline_dirs.items() if k.startswith("VALUELEX_")}
    params = {"stem_ids": ["c01", "sc3", "so1"], "n_boot": 100, "validate": False}
    numbers = run_notebook("06_projective", Path(pipeline_dirs["out"]), params, env)
    assert numbers["n_models"] == 4 and numbers["n_stems"] == 3
    assert numbers["n_completions"] == 3 * 16
    assert numbers["n_usable"] == 44  # the pretrained Gemma often only repeats the stem
    assert numbers["usable_rate"]["gemma3-270m-base"] == pytest.approx(8 / 12, abs=1e-4)
    assert numbers["n_cases"] == 109  # c01 on all six sub-dimensions, sc3 and so1 on their targets
    # the stance scorer is used when its judge has scored every case; otherwise the fallback, stated
    coverage = numbers["main_scorer_coverage"]
    assert 0 < coverage <= 1 and numbers["scorer"] == "stance"
    assert numbers["scorer_used"] == ("stance" if coverage == 1 else "embedding")
    assert sum(numbers["scorer_status"].values()) == 109
    assert len(numbers["subdimension_scores"]) == 4 * 6
    assert all(0 <= v <= 100 for v in numbers["subdimension_scores"].values())
    assert set(numbers["reliability"]["alpha"]) == set(pj.SUBDIMENSIONS)
    assert 0 <= numbers["reportable_scores"] <= 24
    assert numbers["findings"]["Alignment makes values more diverse"] == "not testable"  # every chat model is aligned
    for name in ("projective_subdimension_bars.png", "projective_heatmap.pdf", "projective_scores.csv",
                 "projective_test_retest.csv", "projective_internal_consistency.md"):  # fmt: skip
        assert Path(pipeline_dirs["VALUELEX_FIGURES"], name).exists()


def test_findings_rest_on_reliable_scores_only() -> None:
    scored = _scored_panel()
    scores = pj.model_scores(scored, n_boot=50)
    gate = pd.DataFrame(
        [
            {
                "model": m,
                "subdimension": s,
                "panel_alpha": 0.8,
                "icc2k": 0.9 if m == "b" else 0.4,
                "reportable": m == "b",
            }
            for m in ("a", "b")
            for s in pj.SUBDIMENSIONS
        ]
    )
    gated = pj.attach_reliability(scores, gate).set_index(["model", "measure"])
    assert gated.loc[("b", "Integrity"), "reportable"] and not gated.loc[("a", "Social"), "reportable"]
    assert gated.loc[("a", "Character"), "icc2k"] == pytest.approx(0.4)  # the smaller of its two parts
    findings = pj.paper_findings(gated.reset_index(), scored).set_index("finding")
    row = findings.loc["Pretrained-only models show no clear value orientation"]
    assert row["verdict"].startswith("not reported: unreliable scores (measured direction: supported")
    assert row["reliability"] == "6 of 12 scores reliable (panel alpha and ICC2k >= 0.70)"
    assert findings.loc["Alignment makes values more diverse", "verdict"] == "not testable"
    ungated = pj.paper_findings(scores, scored).set_index("finding")
    assert (ungated["reliability"] == "no reliability figure").all()


def test_findings_when_every_chat_model_is_aligned() -> None:
    scored = _scored_panel().replace({"training_stage": {"instruct": "aligned"}})
    findings = pj.paper_findings(pj.model_scores(scored, n_boot=50), scored).set_index("finding")
    assert findings.loc["Alignment makes values more diverse", "measured"] == (
        "every chat model of the panel (1) is preference-aligned; none is instruction-tuned only"
    )


def test_score_panel_states_its_fallback() -> None:
    """Cases the judge has not scored: the figures use the fallback, and say so; no error, no silence."""
    cases = _cases(["check every fact twice before I answer", "make things up"])
    cases["key"] = ["k1", "k2"]
    cases["model"] = "m"
    scoring = pj.score_panel(
        cases, "stance", "embedding", "embedding", judge_store=ResponseStore(paths.DATASET / "judge")
    )
    assert scoring.used == "embedding" and scoring.main == "stance" and scoring.coverage == 0.0
    assert scoring.second_name == "stance" and scoring.second is not None and scoring.second.empty
    assert "has not scored every case yet" in str(scoring)
    assert scoring.metrics()["coverage"] == 0.0
    with pytest.raises(StoreMiss):
        pj.score_panel(
            cases, "stance", "embedding", None, judge_store=ResponseStore(paths.DATASET / "judge")
        )  # no fallback asked for: the miss is an error


# --------------------------------------------------------------------------- the stage (notebook 06)
@pytest.mark.parametrize("judged", [True, False], ids=["judge-calls-stored", "judge-calls-missing"])
def test_the_stage_writes_the_files_its_run_s_scorers_declare(tmp_path: Path, judged: bool) -> None:
    """Notebook 06's scored cases are named by the run's scorers (``STAGE.outputs_for(settings)``): a run without a
    second scorer or validation writes exactly its declared files, whether the judge has scored every case (the
    stance scorer's files) or not (the fallback's, and the judge's verdicts so far as the second opinion)."""
    import shutil

    from valuelex import stages
    from valuelex.settings import load_run

    overrides = {"projective.stem_ids": ["c01", "sc3", "so1"], "projective.second_scorer": None,
                 "projective.validate": False, "projective.n_boot": 50}  # fmt: skip
    settings = load_run("default", overrides)
    if judged:  # the dataset's completions and judge calls, read through
        folders = stages.Folders(tmp_path / "p", tmp_path / "f", tmp_path / "b", tmp_path / "raw", paths.DATASET)
    else:  # the completions only: the judge has scored nothing yet
        shutil.copytree(paths.DATASET / pj.STUDY, tmp_path / "raw" / pj.STUDY)
        folders = stages.Folders(tmp_path / "p", tmp_path / "f", tmp_path / "b", tmp_path / "raw", None)
    stage = stages.projective.STAGE
    declared = {(out.name, out.kind): out.optional for out in stage.outputs_for(settings)}
    assert declared[("projective_scored_stance", "data")] is False  # written either way
    assert declared[("projective_scored_embedding", "data")] is True  # the fallback's, if the judge has not scored all
    assert declared[("projective_agreement", "table")] is True  # with a second opinion: here only the fallback's
    assert ("projective_scorer_validation", "table") not in declared  # projective.validate is off
    assert {out.name for out in stage.outputs} >= {f"projective_scored_{name}" for name in pj.SCORERS}  # may write

    r = stages.projective.run(stages.Run(settings, folders))
    written = {p for folder in (folders.processed, folders.figures) for p in folder.glob("*.*")}
    required = {f for out in stage.outputs_for(settings) if not out.optional for f in out.files(folders)}
    assert required <= written <= set(stage.files(folders, settings))
    scored = {p.name for p in written if p.name.startswith("projective_scored_")}
    if judged:
        assert r.scoring.used == "stance" and r.scoring.second is None and written == required
        assert scored == {"projective_scored_stance.csv"} and "scorer_agreement" not in r.figures
    else:
        assert r.scoring.used == "embedding" and r.scoring.coverage == 0 and r.scoring.second_name == "stance"
        assert scored == {"projective_scored_stance.csv", "projective_scored_embedding.csv"}
    numbers = r.metrics()
    assert numbers["scorer_used"] == r.scoring.used and numbers["n_stems"] == 3 and numbers["validation_auc"] == {}
    assert numbers["n_completions"] == len(pd.read_csv(folders.processed / "projective_completions.csv"))
    assert r.validation_shown == () and "Projective value assessment" in str(r)
