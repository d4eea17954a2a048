"""Word labels on scatter plots that do not collide: a small deterministic placement.

Each label is tried at candidate positions around its point (8 directions, at growing
distances, in a fixed order) and takes a position that stays inside the axes and overlaps no
label placed before it; among those, the one covering the fewest other points, counting each
ring further out as half a covered point.
Labels are placed in the order given (the most important first), so when space runs out it
is the least important label that moves furthest; a label moved beyond the first ring gets a
thin leader line to its point, and a label with no free spot within the last ring is left out
(a missing label is better than two unreadable ones). Geometry only, no randomness: the same figure gives the same
bytes on every run.

Place labels after the figure's layout is final (``tight_layout``, axis limits): offsets are
in points, so a later change of the axes' size would move points and labels differently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.text import Annotation, Text
from matplotlib.transforms import Bbox

#: Directions tried around a point, in order of preference (dx, dy): right-up first, as is usual.
DIRECTIONS = ((1, 1), (1, -1), (-1, 1), (-1, -1), (1, 0), (-1, 0), (0, 1), (0, -1))
#: Distances (points) from the point to the label's nearest corner, tried in order.
RINGS = (3.0, 7.0, 12.0, 18.0, 26.0, 36.0, 48.0, 64.0, 84.0, 110.0, 140.0)
#: Labels further than the first ring from their point get a leader line.
LEADER_FROM = 1
#: Padding (points) kept around each label box.
PAD = 1.0
#: Cost of moving one ring further out, in points covered: a label may cover a point rather
#: than move two rings away from its own.
RING_COST = 0.5


@dataclass(frozen=True)
class LabelStyle:
    """Text properties of one label."""

    fontsize: float = 7.5
    color: str = "#333333"
    fontweight: str = "normal"
    fontstyle: str = "normal"


def _alignment(dx: int, dy: int) -> tuple[str, str]:
    ha = "left" if dx > 0 else "right" if dx < 0 else "center"
    va = "bottom" if dy > 0 else "top" if dy < 0 else "center"
    return ha, va


def _box(anchor: np.ndarray, offset: np.ndarray, size: np.ndarray, ha: str, va: str) -> np.ndarray:
    """Display-space box (x0, y0, x1, y1) of a text of ``size`` placed at anchor + offset."""
    x = anchor[0] + offset[0]
    y = anchor[1] + offset[1]
    x0 = x if ha == "left" else x - size[0] if ha == "right" else x - size[0] / 2
    y0 = y if va == "bottom" else y - size[1] if va == "top" else y - size[1] / 2
    return np.array([x0, y0, x0 + size[0], y0 + size[1]])


def _overlap(a: np.ndarray, b: np.ndarray) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def place_labels(
    ax: plt.Axes,
    x: Sequence[float],
    y: Sequence[float],
    texts: Sequence[str],
    styles: Sequence[LabelStyle] | LabelStyle = LabelStyle(),
    radii: Sequence[float] | float = 3.0,
    avoid: np.ndarray | None = None,
    avoid_radii: Sequence[float] | float = 3.0,
    obstacles: Sequence[Bbox] = (),
) -> list[Annotation]:
    """Annotate ``texts`` at data points (x, y) without label collisions; returns the annotations drawn.

    ``radii`` (points) are the labelled markers' radii: distances are counted from the marker's
    edge. ``avoid`` (n x 2, data coordinates) are further points the labels should rather not
    cover (e.g. every point of the scatter), discs of ``avoid_radii`` points. ``obstacles`` are
    display-space boxes no label may overlap (e.g. a legend drawn inside the axes).
    """
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    to_display = ax.transData.transform
    scale = fig.dpi / 72.0  # display units per point
    n = len(texts)
    styles = [styles] * n if isinstance(styles, LabelStyle) else list(styles)
    own_radii = np.broadcast_to(np.asarray(radii, dtype=float), (n,)) * scale
    anchors = to_display(np.column_stack([x, y]).astype(float)) if n else np.zeros((0, 2))
    others = np.zeros((0, 2))
    other_radii = np.zeros(0)
    if avoid is not None and len(avoid):
        others = to_display(np.asarray(avoid, dtype=float))
        other_radii = np.broadcast_to(np.asarray(avoid_radii, dtype=float), (len(others),)) * scale
    frame = ax.get_window_extent(renderer)
    pad = PAD * scale
    placed: list[np.ndarray] = [np.array([b.x0, b.y0, b.x1, b.y1]) for b in obstacles]
    annotations = []
    for anchor, own, text, style in zip(anchors, own_radii, texts, styles, strict=True):
        probe = Text(0, 0, text, fontsize=style.fontsize, fontweight=style.fontweight, fontstyle=style.fontstyle)
        probe.set_figure(fig)
        extent = probe.get_window_extent(renderer)
        size = np.array([extent.width, extent.height]) + 2 * pad
        elsewhere = np.linalg.norm(others - anchor, axis=1) > 1e-6 if len(others) else np.zeros(0, dtype=bool)
        near, near_r = others[elsewhere], other_radii[elsewhere]
        best = None
        for ring_index, ring in enumerate(RINGS):
            if best is not None and RING_COST * ring_index >= best[0]:
                break  # no further ring can beat the best spot found
            for dx, dy in DIRECTIONS:
                ha, va = _alignment(dx, dy)
                offset = np.array([dx, dy], dtype=float) * (own + ring * scale)
                if dx and dy:
                    offset /= np.sqrt(2.0)
                box = _box(anchor, offset, size, ha, va)
                if box[0] < frame.x0 or box[2] > frame.x1 or box[1] < frame.y0 or box[3] > frame.y1:
                    continue
                if any(_overlap(box, other) for other in placed):
                    continue
                covered = int(
                    np.sum(
                        (near[:, 0] > box[0] - near_r)
                        & (near[:, 0] < box[2] + near_r)
                        & (near[:, 1] > box[1] - near_r)
                        & (near[:, 1] < box[3] + near_r)
                    )
                )
                cost = covered + RING_COST * ring_index
                if best is None or cost < best[0]:
                    best = (cost, ring_index, offset, ha, va, box)
        if best is None:  # no free spot anywhere near: leave this (less important) label out
            continue
        _, ring_index, offset, ha, va, box = best
        placed.append(box)
        arrow = None
        if ring_index >= LEADER_FROM:
            arrow = {"arrowstyle": "-", "color": "#888888", "lw": 0.5, "shrinkA": 0, "shrinkB": 0}
        annotations.append(
            ax.annotate(
                text,
                ax.transData.inverted().transform(anchor),
                xytext=offset / scale,
                textcoords="offset points",
                ha=ha,
                va=va,
                fontsize=style.fontsize,
                color=style.color,
                fontweight=style.fontweight,
                fontstyle=style.fontstyle,
                arrowprops=arrow,
                annotation_clip=False,
            )
        )
    return annotations


def text_boxes(fig: plt.Figure, texts: Sequence[Text]) -> list[Bbox]:
    """Display-space bounding boxes of drawn texts, without leader lines (for checking overlaps)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    return [Text.get_window_extent(t, renderer) for t in texts]  # an Annotation's own extent includes its arrow


def overlapping_pairs(boxes: Sequence[Bbox], tolerance: float = 0.5) -> list[tuple[int, int]]:
    """Index pairs of boxes that overlap by more than ``tolerance`` display units in both directions."""
    pairs = []
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            a, b = boxes[i], boxes[j]
            w = min(a.x1, b.x1) - max(a.x0, b.x0)
            h = min(a.y1, b.y1) - max(a.y0, b.y0)
            if w > tolerance and h > tolerance:
                pairs.append((i, j))
    return pairs
