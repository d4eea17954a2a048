"""The 2-D map of the lexicon (notebook 05, Figure 1b): UMAP, t-SNE or PCA, and a UMAP whose layout is
the same on every x86-64 CPU.

Why UMAP needs care. UMAP places the words by stochastic gradient descent: 500 epochs of thousands of
sequential updates. The process is chaotic: a difference in the last bit of one intermediate value
grows, epoch after epoch, into a different map. umap-learn compiles its descent with numba for the
host CPU with ``fastmath``, so a CPU with FMA and AVX-512 fuses and reorders the float32 arithmetic
differently from an older one. On the committed lexicon (143 words), umap-learn 0.5.12 with
``NUMBA_CPU_NAME=generic`` instead of this machine's ``znver4`` gave another map from identical
inputs: moved by up to 11.2 units (the map is about 5 units wide) and, after the best alignment
(Procrustes), a disparity of 0.094 with 69% of each word's 10 map neighbours kept, about what another
seed (0.139, 63%) or ``n_neighbors`` 30 (0.116, 58%) gives (``benchmarks/bench_blas_reproducibility.py
--map``).
Other CPUs also differ in the last bits of BLAS (the cosine distances, the eigensolver of the spectral
initialisation), of numpy's SIMD loops and of glibc's ``exp``/``pow`` variants.

What :func:`umap_layout` does instead. It is umap-learn's algorithm (the same fuzzy graph, spectral
initialisation, curve, objective, learning-rate schedule and negative sampling), with umap-learn's own
functions for the graph and the initialisation, and every place where a CPU can change a last bit
followed by a rounding that removes it:

1. cosine distances: a sequential float64 loop over the float32 vectors, compiled without
   ``fastmath`` (no BLAS, no reordering): the same bits on every CPU;
2. neighbours by a stable sort; the fuzzy graph by umap-learn, whose memberships are float32;
3. the curve's ``a`` and ``b`` rounded to 4 significant digits (``curve_fit`` stops at an iteration
   that depends on the CPU: 3.8e-10 apart measured with numpy's SIMD loops and glibc's FMA variants
   switched off);
4. the spectral initialisation scaled to +-10 as umap-learn does, each eigenvector's sign fixed, then
   rounded to 4 decimals before umap-learn's own 1e-4 noise is added (ARPACK through BLAS kernels:
   up to 8.5e-14 apart measured);
5. the descent compiled without ``fastmath`` (no fused or reordered operations), computed in float64
   and stored in float32, as umap-learn stores it: the last-bit differences of ``pow`` between
   libm variants (2.2% of results differ by one unit in the last place with glibc's FMA and AVX2
   variants switched off) vanish in the rounding to float32.

Measured (``tests/test_cpu_emulation.py``, ``benchmarks/bench_blas_reproducibility.py``): the same
float32 bits under numba for the host CPU and for ``generic``, OpenBLAS SkylakeX, Haswell and
Sandybridge kernels with 1 or 2 threads, numpy without its AVX2/AVX-512 loops and glibc without its
FMA/AVX2 variants; under the last of these, also for seeds 0-199 (200 of 200 maps the same bits).
A rounding can still, in principle, fall on a boundary on some CPU (a last-bit difference lands on
both sides of a rounding point). A rough bound for the largest source, ``pow``: about 3.2 million
calls per map of 143 words, 2.2% of them one unit apart in float64, each of which moves a float32
coordinate with a chance of at most about 2**-29 (a few in 1e9): below one map in 1,000.
``valuelex verify`` would then report the coordinates as different (it compares them to 0.002).
The numbers come from ``benchmarks/bench_blas_reproducibility.py --map``.

t-SNE (scikit-learn) and PCA are not made CPU-independent here: PCA moves only in the last bits;
t-SNE, like umap-learn's own code, may move the words on another CPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

PROJECTIONS = ("umap", "tsne", "pca")

#: Significant digits kept of UMAP's curve parameters a and b (our choice: see the module docstring).
CURVE_DIGITS = 4
#: Decimals kept of the spectral initialisation, scaled to +-10 (umap-learn then adds noise of 1e-4).
INIT_DECIMALS = 4


def project_2d(
    vectors: np.ndarray,
    method: str = "umap",
    seed: int = 0,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    perplexity: float = 30.0,
) -> np.ndarray:
    """2-D coordinates of the vectors for the map: UMAP (cosine; :func:`umap_layout`), t-SNE (cosine) or PCA."""
    n = len(vectors)
    if method == "umap":
        return umap_layout(vectors, n_neighbors=n_neighbors, min_dist=min_dist, seed=seed)
    if method == "tsne":
        from sklearn.manifold import TSNE

        tsne = TSNE(
            n_components=2, perplexity=min(perplexity, (n - 1) / 3), metric="cosine", init="pca", random_state=seed
        )
        return tsne.fit_transform(vectors)
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(vectors)
    raise ValueError(f"unknown projection {method!r}: use one of {PROJECTIONS}")


# --------------------------------------------------------------------------- UMAP, the same on every CPU


@numba.njit(cache=True)
def _cosine_distances(vectors: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """1 - u.v for unit float32 vectors, summed in float64 in index order (each product is exact)."""
    n, dim = vectors.shape
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            s = 0.0
            for d in range(dim):
                s += np.float64(vectors[i, d]) * np.float64(vectors[j, d])
            value = max(1.0 - s, 0.0)
            out[i, j] = value
            out[j, i] = value
    return out


def cosine_distances(vectors: np.ndarray) -> np.ndarray:
    """Cosine distances of the rows of ``vectors`` (normalised, then rounded to float32), the same bits on every CPU."""
    v = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError("umap layout: a vector of zeros has no direction (cosine distance undefined)")
    unit = v if np.allclose(norms, 1.0, atol=1e-6) else v / norms
    return _cosine_distances(np.ascontiguousarray(unit, dtype=np.float32))


@numba.njit(cache=True)
def _clip(value: float) -> float:  # pragma: no cover - compiled
    if value > 4.0:
        return 4.0
    if value < -4.0:
        return -4.0
    return value


@numba.njit(cache=True)
def _optimize(
    embedding, head, tail, epochs_per_sample, a, b, rng_state_per_sample, gamma, initial_alpha, negative_rate, n_epochs
):  # pragma: no cover - compiled
    """umap-learn's ``optimize_layout_euclidean`` (move_other, no densMAP), in float64 arithmetic, float32 storage."""
    n_vertices, dim = embedding.shape
    epochs_per_negative_sample = epochs_per_sample / negative_rate
    next_negative = epochs_per_negative_sample.copy()
    next_sample = epochs_per_sample.copy()
    alpha = initial_alpha
    for n in range(n_epochs):
        for i in range(epochs_per_sample.shape[0]):
            if next_sample[i] > n:
                continue
            j = head[i]
            k = tail[i]
            dist_squared = 0.0
            for d in range(dim):
                diff = np.float64(embedding[j, d]) - np.float64(embedding[k, d])
                dist_squared += diff * diff
            if dist_squared > 0.0:
                grad_coeff = -2.0 * a * b * math.pow(dist_squared, b - 1.0)
                grad_coeff /= a * math.pow(dist_squared, b) + 1.0
            else:
                grad_coeff = 0.0
            for d in range(dim):
                grad = _clip(grad_coeff * (np.float64(embedding[j, d]) - np.float64(embedding[k, d])))
                embedding[j, d] = np.float32(np.float64(embedding[j, d]) + grad * alpha)
                embedding[k, d] = np.float32(np.float64(embedding[k, d]) - grad * alpha)
            next_sample[i] += epochs_per_sample[i]
            n_negative = int((n - next_negative[i]) / epochs_per_negative_sample[i])
            for _ in range(n_negative):
                k = _tau_rand_int(rng_state_per_sample[j]) % n_vertices
                dist_squared = 0.0
                for d in range(dim):
                    diff = np.float64(embedding[j, d]) - np.float64(embedding[k, d])
                    dist_squared += diff * diff
                if dist_squared > 0.0:
                    grad_coeff = 2.0 * gamma * b
                    grad_coeff /= (0.001 + dist_squared) * (a * math.pow(dist_squared, b) + 1.0)
                elif j == k:
                    continue
                else:
                    grad_coeff = 0.0
                for d in range(dim):
                    grad = 0.0
                    if grad_coeff > 0.0:
                        grad = _clip(grad_coeff * (np.float64(embedding[j, d]) - np.float64(embedding[k, d])))
                    embedding[j, d] = np.float32(np.float64(embedding[j, d]) + grad * alpha)
            next_negative[i] += n_negative * epochs_per_negative_sample[i]
        alpha = initial_alpha * (1.0 - (float(n) / float(n_epochs)))
    return embedding


@numba.njit(cache=True)
def _tau_rand_int(state):  # pragma: no cover - compiled
    """umap-learn's Tausworthe generator (``umap.utils.tau_rand_int``, an int32 result): integer arithmetic only."""
    state[0] = (((state[0] & 4294967294) << 12) & 0xFFFFFFFF) ^ ((((state[0] << 13) & 0xFFFFFFFF) ^ state[0]) >> 19)
    state[1] = (((state[1] & 4294967288) << 4) & 0xFFFFFFFF) ^ ((((state[1] << 2) & 0xFFFFFFFF) ^ state[1]) >> 25)
    state[2] = (((state[2] & 4294967280) << 17) & 0xFFFFFFFF) ^ ((((state[2] << 3) & 0xFFFFFFFF) ^ state[2]) >> 11)
    return np.int32(state[0] ^ state[1] ^ state[2])


def _significant(value: float, digits: int) -> float:
    return float(f"{value:.{digits - 1}e}")


@dataclass
class Descent:
    """Everything umap-learn's descent starts from: the graph's edges, their sampling schedule, the curve
    and the initial float32 layout (umap-learn's ``simplicial_set_embedding`` up to its call of
    ``optimize_layout_euclidean``)."""

    embedding: np.ndarray  # float32, n x 2, scaled to [0, 10]
    head: np.ndarray
    tail: np.ndarray
    epochs_per_sample: np.ndarray
    a: float
    b: float
    rng_state: np.ndarray  # int64, 3 values
    n_epochs: int

    def rng_state_per_sample(self) -> np.ndarray:
        """umap-learn's per-vertex generator states (the seed's state plus the bits of the vertex's x)."""
        per_sample = np.full((len(self.embedding), len(self.rng_state)), self.rng_state, dtype=np.int64)
        return per_sample + self.embedding[:, 0].astype(np.float64).view(np.int64).reshape(-1, 1)


def prepare_descent(vectors: np.ndarray, n_neighbors: int, min_dist: float, seed: int) -> Descent:
    """The fuzzy graph, curve and initial layout of :func:`umap_layout` (steps 1-4 of the module docstring)."""
    try:
        import scipy.sparse
        from umap.spectral import spectral_layout
        from umap.umap_ import INT32_MAX, INT32_MIN, find_ab_params, fuzzy_simplicial_set, make_epochs_per_sample
    except ImportError as err:
        raise ImportError(
            "projection='umap' needs umap-learn (pip install -c requirements.lock umap-learn); "
            "or use projection='tsne' or 'pca'"
        ) from err
    n = len(vectors)
    if n < 3:
        raise ValueError(f"umap layout: need at least 3 vectors, got {n}")
    k = min(n_neighbors, n - 1)
    random_state = np.random.RandomState(seed)
    distances = cosine_distances(vectors)
    neighbours = np.argsort(distances, axis=1, kind="stable")[:, :k]
    graph, _, _ = fuzzy_simplicial_set(
        distances, k, random_state, "precomputed",
        knn_indices=neighbours, knn_dists=np.take_along_axis(distances, neighbours, axis=1),
    )  # fmt: skip
    a, b = (_significant(float(x), CURVE_DIGITS) for x in find_ab_params(1.0, min_dist))
    graph = scipy.sparse.coo_matrix(graph)
    graph.sum_duplicates()
    n_epochs = 500 if n <= 10000 else 200  # umap-learn's default
    graph.data[graph.data < graph.data.max() / float(n_epochs)] = 0.0
    graph.eliminate_zeros()
    init = np.asarray(spectral_layout(distances, graph, 2, random_state, metric="precomputed"), dtype=np.float64)
    signs = np.sign(init[np.abs(init).argmax(axis=0), np.arange(init.shape[1])])  # largest entry positive
    init = np.round(init * np.where(signs == 0, 1.0, signs) * (10.0 / np.abs(init).max()), INIT_DECIMALS)
    embedding = init.astype(np.float32) + random_state.normal(scale=0.0001, size=init.shape).astype(np.float32)
    epochs_per_sample = make_epochs_per_sample(graph.data, n_epochs).astype(np.float64)
    rng_state = random_state.randint(INT32_MIN, INT32_MAX, 3).astype(np.int64)
    lo, hi = embedding.min(axis=0), embedding.max(axis=0)
    embedding = (10.0 * (embedding - lo) / (hi - lo)).astype(np.float32, order="C")
    return Descent(
        embedding, graph.row.astype(np.int64), graph.col.astype(np.int64), epochs_per_sample, a, b, rng_state, n_epochs
    )


def umap_layout(vectors: np.ndarray, n_neighbors: int = 15, min_dist: float = 0.1, seed: int = 0) -> np.ndarray:
    """UMAP of the vectors (cosine), as umap-learn 0.5 computes it, but the same on every CPU.

    See the module docstring for what differs from ``umap.UMAP(metric="cosine", random_state=seed)``:
    nothing in the algorithm; where the CPU could change a last bit, a rounding removes it.
    Returns float64 coordinates (float32 values), one row per vector.
    """
    start = prepare_descent(vectors, n_neighbors, min_dist, seed)
    layout = _optimize(
        start.embedding.copy(), start.head, start.tail, start.epochs_per_sample, start.a, start.b,
        start.rng_state_per_sample(), 1.0, 1.0, 5.0, start.n_epochs,
    )  # fmt: skip
    return layout.astype(np.float64)
