"""valuelex.psychometrics.projection: the 2-D map; UMAP as umap-learn computes it, but the same bits on every CPU.

The CPU-independence itself is tested under emulated CPUs in tests/test_cpu_emulation.py; here:
that the descent is umap-learn's (same steps, same random numbers), that the map is seeded and
keeps groups apart, and that a real change of the map's settings moves it far beyond verify's
tolerance for coordinates (0.002).
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from valuelex import semantic
from valuelex.core.precision import QUANTITIES
from valuelex.psychometrics import projection

umap = pytest.importorskip("umap", reason="umap-learn not installed: projection='tsne' or 'pca' still work")


def _groups(n_per_group: int = 20, dim: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit float32 vectors around three random directions, and the group of each."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, dim))
    truth = np.repeat(np.arange(3), n_per_group)
    vectors = centres[truth] + 0.6 * rng.normal(size=(len(truth), dim))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32), truth


def test_cosine_distances() -> None:
    vectors, _ = _groups()
    d = projection.cosine_distances(vectors)
    v = vectors.astype(np.float64)
    assert np.abs(d - np.maximum(1 - v @ v.T, 0) * (1 - np.eye(len(v)))).max() < 1e-12
    assert (d == d.T).all() and (np.diag(d) == 0).all() and (d >= 0).all()
    assert np.abs(projection.cosine_distances(vectors.astype(np.float64) * 3.0) - d).max() < 1e-6  # normalised first
    with pytest.raises(ValueError, match="vector of zeros"):
        projection.cosine_distances(np.vstack([vectors, np.zeros((1, vectors.shape[1]), np.float32)]))


def test_random_numbers_are_umap_learns() -> None:
    from umap.utils import tau_rand_int

    ours, theirs = np.array([12345, -678, 2**31 - 5], np.int64), np.array([12345, -678, 2**31 - 5], np.int64)
    drawn = [(projection._tau_rand_int(ours), tau_rand_int(theirs)) for _ in range(2000)]
    assert all(a == b for a, b in drawn) and (ours == theirs).all()
    assert len({a for a, _ in drawn}) == 2000 and min(a for a, _ in drawn) < 0  # int32, as umap-learn's


@pytest.mark.slow
def test_the_descent_takes_umap_learns_steps() -> None:
    """From the same start, umap-learn's descent and ours agree after the first epochs of updates.

    They agree only while float32 rounding differences are small: the descent is chaotic (1e-5 apart
    after epoch 2 becomes several units by epoch 5), which is why umap-learn's own map moves on
    another CPU. Agreement after 2 epochs of moves of up to 5 units means the same edges, negative
    samples, gradients and learning rate.
    """
    from umap.layouts import optimize_layout_euclidean

    vectors, _ = _groups()
    start = projection.prepare_descent(vectors, 15, 0.1, 0)
    theirs = start.embedding.copy()
    optimize_layout_euclidean(
        theirs, theirs, start.head, start.tail, 2, len(theirs), start.epochs_per_sample, start.a, start.b,
        start.rng_state.copy(), 1.0, 1.0, 5.0, move_other=True,
    )  # fmt: skip
    ours = projection._optimize(
        start.embedding.copy(), start.head, start.tail, start.epochs_per_sample, start.a, start.b,
        start.rng_state_per_sample(), 1.0, 1.0, 5.0, 2,
    )  # fmt: skip
    assert np.abs(ours - start.embedding).max() > 1.0  # the words moved
    assert np.abs(ours - theirs).max() < 1e-3  # ... by the same steps (float32 rounding apart)


@pytest.mark.slow
def test_umap_map_is_seeded_keeps_groups_apart_and_moves_with_its_settings() -> None:
    vectors, truth = _groups()
    layout = projection.project_2d(vectors, "umap", seed=0)
    assert layout.shape == (60, 2) and np.isfinite(layout).all()
    assert np.array_equal(layout, semantic.project_2d(vectors, "umap", seed=0))  # the same bits again
    labels = semantic.cluster(layout.astype(np.float32), 3, method="agglomerative-ward")
    assert adjusted_rand_score(truth, labels) > 0.9
    tolerance = QUANTITIES["coordinate"].tolerance(0.0, 0.0)
    for changed in ({"seed": 1}, {"n_neighbors": 10}, {"min_dist": 0.3}):
        other = projection.project_2d(vectors, "umap", **{"seed": 0, **changed})
        assert np.abs(other - layout).max() > 100 * tolerance, changed  # verify sees another map


@pytest.mark.slow
def test_umap_map_is_as_faithful_as_umap_learns() -> None:
    """Trustworthiness (how many of each point's map neighbours are true neighbours) like umap-learn's."""
    from sklearn.manifold import trustworthiness

    vectors, _ = _groups(n_per_group=30, dim=64, seed=3)
    ours = projection.umap_layout(vectors, seed=0)
    theirs = umap.UMAP(metric="cosine", random_state=0, n_jobs=1).fit_transform(vectors)
    score = {
        name: trustworthiness(vectors, layout, n_neighbors=10, metric="cosine")
        for name, layout in (("ours", ours), ("umap-learn", theirs))
    }
    assert score["ours"] > score["umap-learn"] - 0.03, score


def test_unknown_projection_and_too_few_words() -> None:
    vectors, _ = _groups()
    with pytest.raises(ValueError, match="unknown projection 'mds'"):
        projection.project_2d(vectors, "mds")
    with pytest.raises(ValueError, match="at least 3 vectors"):
        projection.umap_layout(vectors[:2])
