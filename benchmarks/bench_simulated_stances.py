"""Can the real stance judge read the simulated population's planted stances?

    VALUELEX_MODELS_DIR=/path/to/.models .venv/bin/python benchmarks/bench_simulated_stances.py   # ~3 minutes

For each value-targeted stem of the projective instrument, one high and one low completion of the
simulated population (temperature 0.7, the first model and seed that shows each stance) are scored
by the log-probability judge (``LogprobJudge``: Qwen2.5-Coder 1.5B on llama.cpp, live, into a
temporary store). Prints the ROC AUC of the judge's score for high against low, the seconds per
judge call, and every case ranked. Needs the judge's GGUF (``valuelex install-models
qwen2.5-coder-1.5b-instruct``) and llama-cpp-python.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from sklearn.metrics import roc_auc_score

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from valuelex.llm.store import ResponseStore  # noqa: E402
from valuelex.projective import LogprobJudge, load_instrument  # noqa: E402
from valuelex.projective.instrument import clean_completion  # noqa: E402
from valuelex.simulated import Ask, Population  # noqa: E402


def cases(population: Population) -> pd.DataFrame:
    """One high and one low completion per targeted stem (no "As an AI" openings)."""
    instrument = load_instrument()
    rows = []
    for stem in instrument.stems:
        if stem.kind != "targeted":
            continue
        wanted = {"high", "low"}
        for model in population.model_names:
            for seed in range(1, 40):
                user = instrument.instruction.format(stem=stem.text)
                answer = population.answer(Ask(model, "chat", instrument.system.strip(), user, 0.7, 0.95, seed, 48))
                truth = answer.truth
                if truth["shown"] in wanted and not truth["refusal"]:
                    wanted.discard(truth["shown"])
                    rows.append(
                        {
                            "stem": stem.text,
                            "completion": clean_completion(answer.text),
                            "subdimension": truth["subdimension"],
                            "shown": truth["shown"],
                            "model": model,
                        }
                    )
                if not wanted:
                    break
            if not wanted:
                break
    return pd.DataFrame(rows)


def main() -> int:
    table = cases(Population.load())
    with tempfile.TemporaryDirectory() as store:
        judge = LogprobJudge(mode="live", store=ResponseStore(Path(store)), progress=False)
        start = time.perf_counter()
        scored = judge.score(table)
        seconds = time.perf_counter() - start
    valid = scored[scored["valid"]]
    auc = roc_auc_score(valid["shown"] == "high", valid["score"])
    pd.set_option("display.width", 200)
    pd.set_option("display.max_colwidth", 100)
    print(valid.sort_values("score")[["shown", "subdimension", "score", "completion"]].to_string(index=False))
    print(
        f"\n{len(valid)} of {len(scored)} cases scored; ROC AUC high vs low {auc:.3f}; "
        f"{seconds / len(scored):.1f} s per judge call"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
