"""Collision-free word labels: no two labels overlap, every label stays in its axes, same bytes twice."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from valuelex.plots import labels


def crowded_figure() -> tuple[plt.Figure, list]:
    """40 points, 25 of them labelled, most in one dense clump near the right edge."""
    rng = np.random.default_rng(0)
    clump = rng.normal([0.9, 0.5], 0.03, size=(30, 2))
    spread = rng.uniform(0, 1, size=(10, 2))
    points = np.vstack([clump, spread])
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(points[:, 0], points[:, 1], s=20)
    ax.set(xlim=(0, 1), ylim=(0, 1))
    words = [f"value word {i}" for i in range(25)]
    texts = labels.place_labels(ax, points[:25, 0], points[:25, 1], words, avoid=points)
    return fig, texts


def test_labels_do_not_overlap_and_stay_inside_the_axes() -> None:
    fig, texts = crowded_figure()
    assert len(texts) == 25  # the rings reach far enough for every label of this clump
    boxes = labels.text_boxes(fig, texts)
    assert labels.overlapping_pairs(boxes) == []
    frame = fig.axes[0].get_window_extent(fig.canvas.get_renderer())
    for box in boxes:
        assert frame.x0 - 0.5 <= box.x0 and box.x1 <= frame.x1 + 0.5
        assert frame.y0 - 0.5 <= box.y0 and box.y1 <= frame.y1 + 0.5
    moved = [t for t in texts if t.arrow_patch is not None]
    assert moved, "in a clump this dense some labels must move away (with a leader line)"
    plt.close(fig)


def test_overlapping_pairs_finds_an_overlap() -> None:
    fig, ax = plt.subplots()
    a = ax.text(0.5, 0.5, "justice")
    b = ax.text(0.5, 0.5, "fairness")
    c = ax.text(0.1, 0.1, "kindness")
    assert labels.overlapping_pairs(labels.text_boxes(fig, [a, b, c])) == [(0, 1)]
    plt.close(fig)


def test_placement_is_deterministic() -> None:
    def png() -> bytes:
        fig, _ = crowded_figure()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", metadata={"Software": None})
        plt.close(fig)
        return buffer.getvalue()

    assert png() == png()
