"""`valuelex plan`: what a live run would call, before it calls anything."""

from __future__ import annotations

from pathlib import Path

import yaml

from valuelex import projective
from valuelex.app.plan import plan_run
from valuelex.core import paths
from valuelex.settings import load_run


def _part(plan, name: str):
    return next((p, note) for n, p, note in plan.parts if n == name)


def test_the_judge_is_planned_exactly_on_the_completions_already_stored(tmp_path: Path) -> None:
    """The committed projective panel plus one new respondent. Before: as soon as one completion was not
    stored, the judge's calls were bounded as if none of the panel's completions had been judged (every
    completion counted: 17 respondents' worth); now the stored completions' judge calls are counted from
    the judge's store (all judged already: none) and only the new respondent's are an upper bound."""
    card = yaml.safe_load((paths.MODEL_CARDS / "smollm2-135m-instruct.yaml").read_text())
    card["name"] = "my-smollm"
    (tmp_path / "my-smollm.yaml").write_text(yaml.safe_dump(card, sort_keys=False))
    panel = yaml.safe_load((paths.PANELS / "projective_local.yaml").read_text())
    panel["name"] = "plus_one"
    panel["models"].append({"card": "my-smollm.yaml", "temperature": [0.7], "top_p": [0.95], "seed": [5]})
    (tmp_path / "plus_one.yaml").write_text(yaml.safe_dump(panel, sort_keys=False))
    run = yaml.safe_load((paths.CONFIGS / "runs" / "default.yaml").read_text())
    run["mode"] = "live"
    run["projective"]["panel"] = str(tmp_path / "plus_one.yaml")
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(run, sort_keys=False))

    plan = plan_run(load_run(tmp_path / "mine.yaml"))
    completions, _ = _part(plan, "projective completions")
    stems = projective.load_instrument().stems
    assert completions.to_call == len(stems)  # the new respondent's, one per stem
    targets = sum(len(s.targets) for s in stems)  # one judge call per completion and sub-dimension it targets
    for kind in ("stance", "logprob"):
        name = f"judge ({kind} scorer)"
        if name not in [n for n, _, _ in plan.parts]:
            continue
        judge, note = _part(plan, name)
        assert judge.to_call == targets, (kind, judge.to_call, targets)
        assert judge.stored > 0 and judge.requested == judge.stored + targets
        assert note == f"upper bound: {len(stems)} completions not stored yet"
    assert any(n.startswith("judge") for n, _, _ in plan.parts)
