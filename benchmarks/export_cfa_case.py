"""The rehearsal's CFA cases, written out and fitted by our WLSMV and by lavaan side by side.

    .venv/bin/python benchmarks/export_cfa_case.py rehearsal [--out runs/rehearsal/cfa_case] [--no-fit]

Takes a run of the simulated population (``valuelex run rehearsal --yes``, or ``rehearsal_small``) and writes what
``python -m valuelex.simulated recover`` fits in its CFA section (``valuelex.simulated.stages``): ``data.csv``, the
respondents x planted words it chooses (each planted dimension's ``cfa.max_indicators`` highest-loading recovered
words used by at least ``efa.min_frequency`` of the respondents; spaces in column names as underscores, so that
lavaan's syntax takes them), and lavaan model files ``planted.lav``, ``dealt.lav`` (``wrong_taxonomy``) and
``moved.lav`` (``moved_taxonomy``). Then, unless ``--no-fit``, it fits each model with
``valuelex.psychometrics.cfa.wlsmv.fit`` and with ``lavaan::cfa(model, data, ordered = names(data), estimator = "WLSMV")`` (marker
parametrisation) and ``std.lv = TRUE``, and prints discrepancy (lavaan's fmin), chi-square, scaled CFI and RMSEA,
convergence, admissibility and iterations of each. ``tests/data/wlsmv_rehearsal.csv`` is ``data.csv`` of the
``rehearsal`` run.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from valuelex.psychometrics.cfa import wlsmv  # noqa: E402
from valuelex.settings import load_run  # noqa: E402
from valuelex.simulated import Population  # noqa: E402
from valuelex.simulated.recovery import first_stages  # noqa: E402
from valuelex.simulated.stages import moved_taxonomy, wrong_taxonomy  # noqa: E402
from valuelex.stages import Folders  # noqa: E402

R_FIT = r"""
suppressPackageStartupMessages(library(lavaan))
args <- commandArgs(trailingOnly = TRUE)
data <- read.csv(file.path(args[1], "data.csv"), check.names = FALSE)
for (name in args[-1]) {
  model <- paste(readLines(file.path(args[1], paste0(name, ".lav"))), collapse = "\n")
  for (std in c(FALSE, TRUE)) {
    t <- system.time(fit <- suppressWarnings(cfa(model, data = data, ordered = names(data), estimator = "WLSMV",
                                                 std.lv = std)))[["elapsed"]]
    fm <- if (lavInspect(fit, "converged")) fitMeasures(fit, c("chisq", "cfi.scaled", "rmsea.scaled")) else rep(NA, 3)
    cat(sprintf("%s,%s,%s,%d,%.6f,%.4f,%.4f,%.4f,%s,%.2f\n", name, ifelse(std, "lavaan std.lv", "lavaan"),
                lavInspect(fit, "converged"), lavInspect(fit, "iterations"), fit@optim$fx, fm[1], fm[2], fm[3],
                suppressWarnings(lavInspect(fit, "post.check")), t))
  }
}
"""


def export(run_name: str, out: Path) -> dict[str, dict[str, list[str]]]:
    """Write the CFA case of a rehearsal run (the same choice of words as ``stages._elicitation_stages``)."""
    run = load_run(run_name)
    folders = Folders.of(run)
    population = Population.load()
    first = first_stages(population, folders.processed, folders.raw, run.lexicon)
    factors = list(population.factors)
    words = population.words_table().set_index("word")
    planted = words[[f"loading_{f}" for f in factors]].set_axis(factors, axis=1)
    terms = {w: t for w, t in first.terms.items() if w in planted.index}
    incidence = pd.read_csv(folders.processed / "incidence_respondent_binary.csv", index_col=0)
    incidence = incidence.loc[[r for r in incidence.index if r.split("|")[0] in population.models]]
    planted_by_term = planted.rename(index=terms).loc[[terms[w] for w in terms]]
    share = incidence[list(planted_by_term.index)].mean()
    assignment: dict[str, list[str]] = {}
    for f in factors:
        own = planted_by_term[planted_by_term.idxmax(axis=1) == f][f].sort_values(ascending=False)
        own = own[share.reindex(own.index) >= run.efa.min_frequency]
        assignment[f] = list(own.index[: run.cfa.max_indicators])
    safe = {w: w.replace(" ", "_") for ws in assignment.values() for w in ws}
    out.mkdir(parents=True, exist_ok=True)
    incidence[list(safe)].rename(columns=safe).astype(int).to_csv(out / "data.csv", index=False)
    models = {"planted": assignment, "dealt": wrong_taxonomy(assignment), "moved": moved_taxonomy(assignment)}
    tidy = {name: {f.replace(" ", "_"): [safe[w] for w in ws] for f, ws in m.items()} for name, m in models.items()}
    for name, model in tidy.items():
        (out / f"{name}.lav").write_text("".join(f"{f} =~ {' + '.join(ws)}\n" for f, ws in model.items()))
    return tidy


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a run of the simulated population (rehearsal, rehearsal_small)")
    parser.add_argument("--out", type=Path, help="folder to write to (default: the run's output/cfa_case)")
    parser.add_argument("--no-fit", action="store_true", help="only write the case")
    args = parser.parse_args()
    out = args.out or load_run(args.run).output_dir / "cfa_case"
    models = export(args.run, out)
    print(f"wrote {out}/data.csv and {', '.join(f'{m}.lav' for m in models)}")
    if args.no_fit:
        return 0
    data = pd.read_csv(out / "data.csv")
    rows = []
    for name, factors in models.items():
        start = time.perf_counter()
        fit = wlsmv.fit(factors, data)
        seconds = time.perf_counter() - start
        m = fit.measures
        note = next((n for n in fit.notes if n.startswith("estimated from")), "")
        path = ("standardized, then marker" if "standardized" in note else "lavaan's start") if note else "our start"
        path += note[note.rfind(":") :] if note else ""
        rows.append({"model": name, "fitted by": "ours", "converged": fit.converged, "fmin": m.get("fmin"),
                     "chisq": m.get("chisq"), "cfi.scaled": m.get("cfi.scaled"), "rmsea.scaled": m.get("rmsea.scaled"),
                     "admissible": fit.estimable, "s": round(seconds, 2), "path": path})  # fmt: skip
    rscript = shutil.which("Rscript")
    if rscript:
        result = subprocess.run([rscript, "--vanilla", "-e", R_FIT, str(out), *models], capture_output=True, text=True)
        for line in result.stdout.splitlines():
            name, who, conv, iters, fx, chisq, cfi, rmsea, post, seconds = line.split(",")
            rows.append({"model": name, "fitted by": who, "converged": conv == "TRUE", "fmin": float(fx),
                         "chisq": float(chisq), "cfi.scaled": float(cfi), "rmsea.scaled": float(rmsea),
                         "admissible": post == "TRUE", "s": float(seconds), "path": f"{iters} iterations"})  # fmt: skip
    else:
        print("(no Rscript: lavaan's fits left out)")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(pd.DataFrame(rows).sort_values(["model", "fitted by"]).round(4).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
