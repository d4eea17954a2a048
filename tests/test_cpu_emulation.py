"""Reproduced on any CPU: the default run under emulated other x86-64 CPUs ends ``reproduced``.

What differs between x86-64 CPUs, and how this machine emulates it:

- numba compiles for the host CPU (``NUMBA_CPU_NAME``): the host's name, or ``generic`` (SSE2 only,
  no FMA, no AVX);
- OpenBLAS picks its kernels by CPU (``OPENBLAS_CORETYPE``): SkylakeX (AVX-512), Haswell (AVX2 +
  FMA), Sandybridge (AVX), those this CPU can run;
- threads (OpenBLAS, OpenMP, numba: 1 or 2) change the order of partial sums;
- numpy's SIMD loops (``NPY_DISABLE_CPU_FEATURES``), glibc's libm variants (``GLIBC_TUNABLES``
  without FMA, AVX2, AVX-512) and torch's kernels (``ATEN_CPU_CAPABILITY=default``).

The design keeps the test well under 6 minutes in CI (measured here, 2026-12-05, on the shared
2-core machine: 3 min 45 s in all, 46 s for part 1 and 173 s for part 2):

1. :func:`test_cpu_sensitive_stages_under_every_combination`: every combination of numba CPU (host,
   generic) x OpenBLAS kernel (as available) x threads (1, 2) runs the stages whose numbers depend on
   the CPU, from the committed inputs: the 2-D map (numba, BLAS, libm; notebook 05's
   ``semantic.project_2d``) and the factor analysis (BLAS; notebook 03's tetrachoric correlations and
   ``efa.fit_efa``). ``valuelex verify`` (``verify.verify(names=...)``) compares the tables they give
   with the committed ``semantic_clusters.csv``, ``efa_loadings.csv``, ``efa_variance.csv`` and
   ``efa_factor_correlations.csv``: each combination must end ``reproduced``. numba's CPU and
   OpenBLAS's kernel are fixed when the libraries load, so there is one process per (CPU, kernel)
   pair, and the thread count is switched inside it (threadpoolctl, numba.set_num_threads): at most
   6 processes, 46 s in all here.
2. :func:`test_a_whole_run_on_the_most_different_cpu_is_reproduced`: one full default run
   (``valuelex run``, replaying ``data/raw/`` into temporary folders, the word embeddings computed
   afresh) under the combination most different from the machine that made the committed outputs
   (numba for ``generic``, OpenBLAS Sandybridge, 1 thread where that machine used 2, numpy, libm and
   torch without their AVX2/FMA/AVX-512 code), then ``valuelex verify``: its last line must be a
   ``verdict: reproduced`` and its exit code 0. Every notebook and table is covered once.

The embeddings' own CPU independence (torch kernels) is tested in tests/test_verify.py; the full
run also covers it. Both parts compare with the outputs committed at ``HEAD``: a change that moves a
committed output (as valuelex.psychometrics.projection moved the map) passes here once they are regenerated.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from valuelex.app import verify
from valuelex.core import paths

ROOT = paths.ROOT
STAGE_TABLES = (
    "data/processed/semantic_clusters.csv",
    "figures/efa_loadings.csv",
    "figures/efa_variance.csv",
    "figures/efa_factor_correlations.csv",
)
#: The CPU features each OpenBLAS kernel needs (/proc/cpuinfo flags).
KERNELS = {
    "SkylakeX": {"avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"},
    "Haswell": {"avx2", "fma"},
    "Sandybridge": {"avx"},
}
CPU_VARIABLES = (
    "NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES", "OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
    "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "NPY_DISABLE_CPU_FEATURES", "GLIBC_TUNABLES", "ATEN_CPU_CAPABILITY",
    "MKL_ENABLE_INSTRUCTIONS",
)  # fmt: skip


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return {flag for line in text.splitlines() if line.startswith("flags") for flag in line.split(":", 1)[1].split()}


def available_kernels() -> list[str]:
    flags = cpu_flags()
    return [name for name, needs in KERNELS.items() if needs <= flags]


def numpy_dispatch_targets() -> str:
    """numpy's SIMD targets above its baseline that this CPU runs (``X86_V3 X86_V4 ...``): all switched off."""
    from numpy._core import _multiarray_umath as umath

    found = [name for name in umath.__cpu_dispatch__ if umath.__cpu_features__.get(name)]
    return " ".join(found)


def environment(**cpu: str) -> dict[str, str]:
    """This process's environment without any CPU setting of its own, plus ``cpu``."""
    env = {k: v for k, v in os.environ.items() if k not in CPU_VARIABLES and not k.startswith("VALUELEX_")}
    return {**env, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "0", **cpu}


def most_different_cpu() -> dict[str, str]:
    """The combination furthest from the machine that made the committed outputs (AVX-512, 2 threads)."""
    return {
        "NUMBA_CPU_NAME": "generic",
        "OPENBLAS_CORETYPE": "Sandybridge",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "NUMBA_NUM_THREADS": "1",
        "NPY_DISABLE_CPU_FEATURES": numpy_dispatch_targets(),
        "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2,-FMA,-AVX512F",
        "ATEN_CPU_CAPABILITY": "default",
        "MKL_ENABLE_INSTRUCTIONS": "AVX",
    }


def require_x86_and_git() -> None:
    if platform.machine() not in ("x86_64", "AMD64") or "Sandybridge" not in available_kernels():
        pytest.skip("the CPU emulation uses x86-64 kernels (OpenBLAS Sandybridge needs AVX)")
    if not verify.committed_files(ROOT):
        pytest.skip("not a git clone: verify compares with the committed outputs at HEAD")


# --------------------------------------------------------------------------- 1. the CPU-sensitive stages

STAGES = r"""
import json, sys
from pathlib import Path

import numba
import numpy as np
import pandas as pd
from threadpoolctl import threadpool_info, threadpool_limits

from valuelex import lexicon, semantic
from valuelex.psychometrics import efa
from valuelex.core import io as figures, paths
from valuelex.settings import load_run

vectors_file, out = Path(sys.argv[1]), Path(sys.argv[2])
run = load_run("default")
vectors = np.load(vectors_file)
committed_map = pd.read_csv(paths.COMMITTED_PROCESSED / "semantic_clusters.csv", keep_default_na=False)
n_factors = sum(c.startswith("F") and c[1:].isdigit() for c in pd.read_csv(paths.COMMITTED_FIGURES / "efa_loadings.csv").columns)
s = run.efa
incidence = lexicon.load_incidence(unit=s.unit, coding=s.coding, folder=paths.COMMITTED_PROCESSED)
prepared = efa.prepare_matrix(
    incidence, coding=s.coding, min_frequency=s.min_frequency, min_units=s.min_units, max_words=s.max_words
)
seen = {}
for threads in (1, 2):
    with threadpool_limits(threads):
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        seen[threads] = sorted({(i["internal_api"], i.get("architecture"), i["num_threads"]) for i in threadpool_info()})
        coords = semantic.project_2d(vectors, method=run.semantic.projection, seed=run.semantic.seed)
        table = committed_map.assign(x=coords[:, 0], y=coords[:, 1])
        figures.save_data(table, "semantic_clusters", folder=out / f"{threads}" / "processed")
        corr = efa.correlation_matrix(prepared.data, method=s.correlation)
        result = efa.fit_efa(corr, n_factors, extraction=s.extraction, rotation=s.rotation)
        folder = out / f"{threads}" / "figures"
        figures.save_table(efa.loadings_table(result, s.cutoff), "efa_loadings", folder=folder)
        figures.save_table(result.variance.rename_axis("").reset_index(), "efa_variance", folder=folder)
        figures.save_table(result.phi.rename_axis("factor").reset_index(), "efa_factor_correlations", folder=folder)
print(json.dumps({"numba": numba.config.CPU_NAME or "host", "threadpools": seen}))
"""


@pytest.fixture(scope="module")
def word_vectors(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The committed lexicon's word embeddings, as notebook 05 computes them (float32 .npy)."""
    import numpy as np

    from valuelex import semantic
    from valuelex.settings import load_run

    run = load_run("default")
    folder = tmp_path_factory.mktemp("vectors")
    lexicon = semantic.read_lexicon(paths.COMMITTED_PROCESSED / "lexicon.csv", min_count=run.semantic.min_count)
    embedder = semantic.Embedder(run.semantic.model_dir, cache_dir=folder / "cache")
    vectors = embedder.embed_words(lexicon["word"].tolist(), semantic.resolve_template(run.semantic.template))
    np.save(folder / "words.npy", vectors)
    return folder / "words.npy"


@pytest.mark.slow
def test_cpu_sensitive_stages_under_every_combination(word_vectors: Path, tmp_path: Path) -> None:
    require_x86_and_git()
    combinations = [(cpu, kernel) for cpu in ("host", "generic") for kernel in available_kernels()]
    verdicts = {}
    for cpu, kernel in combinations:
        out = tmp_path / f"{cpu}-{kernel}"
        settings = {"OPENBLAS_CORETYPE": kernel, **({"NUMBA_CPU_NAME": "generic"} if cpu == "generic" else {})}
        done = subprocess.run(
            [sys.executable, "-c", STAGES, str(word_vectors), str(out)],
            env=environment(**settings, OPENBLAS_NUM_THREADS="2", NUMBA_NUM_THREADS="2"),
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        seen = json.loads(done.stdout.strip().splitlines()[-1])
        assert seen["numba"] == ("generic" if cpu == "generic" else "host")
        for threads, pools in seen["threadpools"].items():  # the emulation took effect
            assert all(arch == kernel and n == int(threads) for api, arch, n in pools if api == "openblas"), pools
        for threads in ("1", "2"):
            result = verify.verify(
                root=ROOT, figures_dir=out / threads / "figures", processed_dir=out / threads / "processed",
                names=list(STAGE_TABLES),
            )  # fmt: skip
            verdicts[f"numba {cpu}, OpenBLAS {kernel}, {threads} thread(s)"] = result
    failed = {name: r.text() for name, r in verdicts.items() if not r.passed}
    assert not failed, "\n\n".join(f"{name}:\n{text}" for name, text in failed.items())
    assert all(r.verdict().startswith("verdict: reproduced") for r in verdicts.values())
    # the map is the same bits everywhere (its tolerance would hide nothing: the whole map moves or nothing)
    assert all("data/processed/semantic_clusters.csv" in r.identical_tables for r in verdicts.values())
    print(f"{len(verdicts)} combinations reproduced: {', '.join(verdicts)}")


# --------------------------------------------------------------------------- 2. one whole run


@pytest.mark.slow
def test_a_whole_run_on_the_most_different_cpu_is_reproduced(tmp_path: Path) -> None:
    require_x86_and_git()
    valuelex = Path(sys.executable).parent / "valuelex"
    if not valuelex.exists():
        pytest.skip(f"{valuelex} not installed (./run_all.sh --setup-only)")
    folders = {f"VALUELEX_{name.upper()}": str(tmp_path / name) for name in ("processed", "figures", "build")}
    env = {**environment(**most_different_cpu()), **folders}
    run = subprocess.run([str(valuelex), "run"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
    assert run.returncode == 0, (run.stdout + run.stderr)[-5000:]  # every notebook ran (and its own verify passed)
    checked = subprocess.run([str(valuelex), "verify"], cwd=ROOT, env=env, capture_output=True, text=True)
    last = checked.stdout.strip().splitlines()[-1] if checked.stdout.strip() else ""
    assert checked.returncode == 0 and last.startswith("verdict: reproduced"), checked.stdout[-5000:] + checked.stderr
    print(checked.stdout)
    # the student's view of the same run: every notebook page clean as Chromium renders it (issue 21's rules:
    # no raw dict or repr, no warning or progress-bar block, no absolute path, integers as integers, long
    # tables shortened with a link, wide outputs scroll, a link to the glossary)
    from valuelex.app import tutorial

    browser = tutorial.chromium()
    if browser is None:
        pytest.skip("Chromium is not installed: the tutorial's pages were not checked")
    problems = tutorial.check_tutorial(tmp_path / "build" / "html", browser, tmp_path / "profile")
    assert len(problems) == 9 and not any(problems.values()), problems
