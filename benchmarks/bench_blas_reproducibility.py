"""Do the tables survive another machine's floating point? Runs the whole pipeline under several
BLAS / SIMD settings that stand in for other CPUs, and compares the outputs.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_blas_reproducibility.py [--out DIR] [--reuse]

Each configuration runs ``./run_all.sh`` (venv already present) with its environment, writing to
``DIR/<config>-<precision>/{processed,figures}`` through ``VALUELEX_PROCESSED``/``VALUELEX_FIGURES``
(the committed files are not touched). ``full`` runs set ``VALUELEX_FULL_PRECISION=1`` (every
digit written), ``rounded`` runs use the precision rules of ``valuelex/precision.py``.

The configurations (``--configs``; names from :data:`CONFIGS`):

- ``native-1t``: one thread for OpenBLAS, OpenMP and MKL, the kernels this CPU selects.
- ``native-1t-again``: the same again (same machine, same settings: must give the same bytes).
- ``haswell-2t``: two threads, OpenBLAS Haswell kernels (AVX2), torch and MKL/oneDNN limited to
  AVX2, numba compiling for Haswell: a CPU without AVX-512.
- ``sandybridge-2t``: two threads, OpenBLAS Sandybridge kernels (AVX), torch without vector kernels
  (``ATEN_CPU_CAPABILITY=default``), numba for Sandybridge: an old CPU.

Prints, per precision, which files differ from the first configuration (bytes), the largest
numeric difference per differing table, and, for rounded runs, what ``verify``'s comparison
(``valuelex.report.compare_tables``) says. Wall times vary with machine load; the byte and
tolerance comparisons do not.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from valuelex import report  # noqa: E402

THREADS_1 = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
THREADS_2 = {"OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}
CONFIGS: dict[str, dict[str, str]] = {
    "native-1t": THREADS_1,
    "native-1t-again": THREADS_1,
    "haswell-2t": {
        **THREADS_2,
        "OPENBLAS_CORETYPE": "Haswell",
        "ATEN_CPU_CAPABILITY": "avx2",
        "MKL_ENABLE_INSTRUCTIONS": "AVX2",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "NUMBA_CPU_NAME": "haswell",
    },
    "sandybridge-2t": {
        **THREADS_2,
        "OPENBLAS_CORETYPE": "Sandybridge",
        "ATEN_CPU_CAPABILITY": "default",
        "MKL_ENABLE_INSTRUCTIONS": "AVX",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "NUMBA_CPU_NAME": "sandybridge",
    },
}
OUTPUT_SUFFIXES = (".csv", ".json", ".md", ".png", ".pdf")


def run(config: str, precision: str, out: Path, reuse: bool) -> Path:
    """Run the pipeline once into ``out/<config>-<precision>``; return that folder."""
    folder = out / f"{config}-{precision}"
    done = folder / "done"
    if reuse and done.exists():
        print(f"[{config}-{precision}] reusing {folder}", flush=True)
        return folder
    for sub in ("processed", "figures"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        **CONFIGS[config],
        "PYTHONPATH": str(ROOT),
        "PYTHONHASHSEED": "0",
        "VALUELEX_PROCESSED": str(folder / "processed"),
        "VALUELEX_FIGURES": str(folder / "figures"),
    }
    env.pop("VALUELEX_FULL_PRECISION", None)
    if precision == "full":
        env["VALUELEX_FULL_PRECISION"] = "1"
    started = time.monotonic()
    proc = subprocess.run(["./run_all.sh"], cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - started
    (folder / "run_all.log").write_text(proc.stdout + proc.stderr, encoding="utf-8")
    if "all notebooks done" not in proc.stdout:
        sys.exit(f"[{config}-{precision}] run_all.sh failed (exit {proc.returncode}); see {folder / 'run_all.log'}")
    done.write_text(f"{seconds:.0f}\n")
    print(f"[{config}-{precision}] {seconds:.0f} s, run_all.sh exit {proc.returncode}", flush=True)
    return folder


def outputs(folder: Path) -> dict[str, Path]:
    """Every output file of a run, by its name relative to the run folder (the embedding cache and manifest excluded)."""
    return {
        str(p.relative_to(folder)): p
        for sub in ("processed", "figures")
        for p in sorted((folder / sub).glob("*"))
        if p.suffix in OUTPUT_SUFFIXES and p.name not in ("run_manifest.json", "INDEX.md")
    }


def largest_difference(a: Path, b: Path) -> str:
    """The largest absolute and relative difference between two CSVs' numbers (same shape), or what else differs."""
    x = pd.read_csv(io.StringIO(a.read_text(encoding="utf-8")))
    y = pd.read_csv(io.StringIO(b.read_text(encoding="utf-8")))
    if x.shape != y.shape or list(x.columns) != list(y.columns):
        return f"shape {x.shape} -> {y.shape}"
    numeric = [c for c in x.columns if pd.api.types.is_float_dtype(x[c]) and pd.api.types.is_float_dtype(y[c])]
    text = [c for c in x.columns if c not in numeric and not x[c].astype(str).equals(y[c].astype(str))]
    worst, where = 0.0, ""
    worst_rel = 0.0
    for c in numeric:
        diff = np.abs(x[c].to_numpy() - y[c].to_numpy())
        if np.nanmax(diff, initial=0.0) > worst:
            worst, where = float(np.nanmax(diff)), c
        scale = np.maximum(np.abs(x[c].to_numpy()), 1e-300)
        worst_rel = max(worst_rel, float(np.nanmax(diff / scale, initial=0.0)))
    parts = [f"max |diff| {worst:.2g} ({where}), max rel {worst_rel:.2g}"] if worst else []
    if text:
        parts.append(f"text/integers differ in {', '.join(text[:4])}")
    return "; ".join(parts) or "same numbers, different text"


def compare(runs: dict[str, Path], precision: str) -> None:
    names = list(runs)
    base_name, base = names[0], outputs(runs[names[0]])
    print(f"\n## {precision} precision: each run against {base_name}\n")
    for name in names[1:]:
        other = outputs(runs[name])
        differing = [f for f in base if f in other and base[f].read_bytes() != other[f].read_bytes()]
        missing = [f for f in base if f not in other]
        tables = [f for f in base if f.endswith(".csv")]
        figures = [f for f in base if f.endswith((".png", ".pdf"))]
        print(
            f"### {name}: {len(differing)} of {len(base)} files differ in bytes "
            f"({sum(f in differing for f in tables)} of {len(tables)} CSV tables, "
            f"{sum(f in differing for f in figures)} of {len(figures)} figures)"
            + (f"; missing: {', '.join(missing)}" if missing else "")
        )
        for f in differing:
            if f.endswith(".csv"):
                note = largest_difference(base[f], other[f])
                if precision == "rounded":
                    real = report.compare_tables(
                        base[f].read_text(encoding="utf-8"), other[f].read_text(encoding="utf-8"), f
                    )
                    note += "; verify: " + (f"{len(real)} real differences: {real[0]}" if real else "within tolerance")
                print(f"- {f}: {note}")
            elif f.endswith(".png"):
                print(f"- {f}: {report._png_change(base[f].read_bytes(), other[f].read_bytes()):.3%} of pixels changed")
            else:
                print(f"- {f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "blas_reproducibility")
    parser.add_argument("--configs", default="native-1t,native-1t-again,haswell-2t,sandybridge-2t")
    parser.add_argument("--precision", default="full,rounded", help="full, rounded or both (comma-separated)")
    parser.add_argument("--reuse", action="store_true", help="keep runs already in --out")
    args = parser.parse_args()
    configs = args.configs.split(",")
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        sys.exit(f"unknown configuration(s) {unknown}; known: {', '.join(CONFIGS)}")
    for precision in args.precision.split(","):
        chosen = [c for c in configs if not (precision == "full" and c.endswith("-again"))]
        runs = {c: run(c, precision, args.out, args.reuse) for c in chosen}
        compare(runs, precision)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
