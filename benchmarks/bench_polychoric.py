"""Benchmark: polychoric correlation matrices (valuelex.psychometrics.polychoric) against lavaan's ``lavCor``.

    .venv/bin/python benchmarks/bench_polychoric.py [--repeats 3]

Times ``polychoric.polychoric_matrix`` and R's ``lavaan::lavCor(x, ordered = names(x))`` (one
``Rscript`` call per repeat, timed inside R with ``system.time``, so without R's start-up) on: issue 20's stress case
(200 units x 30 three-category items), and our word counts (``efa.coding: counts``; the 40 most used
words, and all 123 words of the committed panel). Runs alternate between the two so that a busy
machine slows both alike; medians are printed, with the largest difference between the matrices on
the pairs whose maximum is interior (lavaan's value on a boundary pair is wherever its optimiser
stopped on a flat likelihood).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.test_polychoric import stress_case  # noqa: E402
from valuelex import lexicon  # noqa: E402
from valuelex.core import paths  # noqa: E402
from valuelex.psychometrics import efa, polychoric

R_CODE = """
suppressPackageStartupMessages(library(lavaan))
args <- commandArgs(trailingOnly = TRUE)
x <- read.csv(args[1], check.names = FALSE)
t <- system.time(r <- suppressWarnings(lavCor(x, ordered = names(x))))[["elapsed"]]
write.csv(unclass(r), args[2], row.names = FALSE)
cat(t, "\\n")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    counts = efa.prepare_matrix(
        lexicon.load_incidence(unit="respondent", coding="counts", folder=paths.COMMITTED_PROCESSED), coding="counts"
    ).data
    used = (counts > 0).sum().sort_values(ascending=False, kind="stable")
    cases = {
        "stress case: 200 x 30 three-category items": stress_case(),
        "word counts: 120 x 40 most used words": counts[list(used.index[:40])].astype(int),
        "word counts: 120 x 123 words": counts.astype(int),
    }
    rscript = shutil.which("Rscript")
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "lavcor.R"
        script.write_text(R_CODE)
        for label, data in cases.items():
            path = Path(tmp) / "data.csv"
            data.to_csv(path, index=False)
            ours, theirs = [], []
            for _ in range(args.repeats):
                start = time.perf_counter()
                matrix = polychoric.polychoric_matrix(data)
                ours.append(time.perf_counter() - start)
                if rscript:
                    out = subprocess.run(
                        [rscript, "--vanilla", str(script), str(path), str(Path(tmp) / "r.csv")],
                        capture_output=True,
                        text=True,
                        check=True,
                    )
                    theirs.append(float(out.stdout.split()[-1]))
            pairs = len(data.columns) * (len(data.columns) - 1) // 2
            line = f"{label:<46s} {len(matrix.boundary_pairs):>5d} of {pairs:>5d} pairs at the bound;"
            line += f" ours {np.median(ours):6.2f} s"
            if theirs:
                lavaan = pd.read_csv(Path(tmp) / "r.csv").to_numpy()
                rows, cols = np.triu_indices(len(data.columns), 1)
                interior = np.abs(matrix.correlations[rows, cols]) < polychoric.RHO_BOUND
                gap = np.abs(matrix.correlations - lavaan)[rows, cols][interior].max()
                line += f", lavCor {np.median(theirs):6.2f} s; largest difference (interior pairs) {gap:.1e}"
            print(line)


if __name__ == "__main__":
    main()
