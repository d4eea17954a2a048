"""The embedding scorer: similarity of a completion to high and low exemplar sentences, calibrated."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from ..core.errors import ConfigError
from ..instruments.embedding import load_model
from .instrument import (
    CALIBRATION_FILE,
    DESCRIPTIONS_FILE,
    SUBDIMENSIONS,
    canonical_subdimension,
    completion_only,
    completion_text,
)


@dataclass(frozen=True)
class Poles:
    """High and low poles of one sub-dimension (or the shared 'general' poles)."""

    high_description: str
    low_description: str
    high_exemplars: tuple[str, ...]
    low_exemplars: tuple[str, ...]


@dataclass(frozen=True)
class Descriptions:
    version: str
    subdimensions: dict[str, Poles]
    general: Poles | None


def _poles(path: Path, where: str, data: dict[str, Any]) -> Poles:
    for pole in ("high", "low"):
        if pole not in data or "description" not in data[pole]:
            raise ConfigError(f"{path}: missing required field '{where}.{pole}.description'")
    return Poles(
        data["high"]["description"],
        data["low"]["description"],
        tuple(data["high"].get("exemplars", [])),
        tuple(data["low"].get("exemplars", [])),
    )


def load_descriptions(path: str | Path = DESCRIPTIONS_FILE) -> Descriptions:
    """Read the high/low descriptions and exemplar sentences of the six sub-dimensions."""
    path = Path(path)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    subs = {}
    for name, block in data["subdimensions"].items():
        subs[canonical_subdimension(name)] = _poles(path, f"subdimensions.{name}", block)
    missing = set(SUBDIMENSIONS) - set(subs)
    if missing:
        raise ConfigError(f"{path}: missing sub-dimensions {', '.join(sorted(missing))}")
    general = _poles(path, "general", data["general"]) if "general" in data else None
    return Descriptions(str(data["version"]), subs, general)


#: The scale used when a caller asks for no calibration (``calibration=None``), and how it is labelled.
UNFITTED_SLOPE = 10.0
UNFITTED = "not fitted: default scale (slope 10, intercept 0), chosen by the caller"


@dataclass(frozen=True)
class Calibration:
    """Platt scaling of the raw embedding contrast: P(high) = 1 / (1 + exp(-(slope * raw + intercept)))."""

    slope: float
    intercept: float
    method: str
    descriptions_version: str
    context: str = "completion"
    fitted_on: str = UNFITTED
    n_cases: int = 0

    def apply(self, raw: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(self.slope * np.asarray(raw, dtype=float) + self.intercept)))


def load_calibration(path: str | Path = CALIBRATION_FILE) -> Calibration:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    return Calibration(**{k: data[k] for k in Calibration.__dataclass_fields__ if k in data})


def save_calibration(calibration: Calibration, path: str | Path, note: str = "") -> Path:
    path = Path(path)
    header = "# Platt calibration of the embedding scorer, written by valuelex.app.scorer_eval (do not edit).\n"
    if note:
        header += "".join(f"# {line}\n" for line in note.splitlines())
    path.write_text(header + yaml.safe_dump(asdict(calibration), sort_keys=False), encoding="utf-8")
    return path


@functools.lru_cache(maxsize=1)
def embedding_model() -> Any:
    """all-MiniLM-L6-v2 (:mod:`valuelex.instruments.embedding`), on CPU with one thread (faster here)."""
    import torch

    torch.set_num_threads(1)
    return load_model()


_EMBEDDED: dict[str, np.ndarray] = {}  # text -> vector, for the life of the process


def embed(texts: Sequence[str]) -> np.ndarray:
    """Unit-length sentence embeddings (rows) of the texts (each text is encoded once per process)."""
    if len(texts) == 0:
        return np.zeros((0, 384), dtype=np.float32)
    new = list(dict.fromkeys(t for t in texts if t not in _EMBEDDED))
    if new:
        vectors = embedding_model().encode(new, normalize_embeddings=True, batch_size=32, show_progress_bar=False)
        _EMBEDDED.update(zip(new, vectors, strict=True))
    return np.vstack([_EMBEDDED[t] for t in texts])


class EmbeddingScorer:
    """Similarity of a completion to the high and low poles of a sub-dimension, calibrated.

    ``method="exemplars"`` (default): raw score = mean cosine to the sub-dimension's high exemplar
    sentences minus mean cosine to its low ones, plus the same contrast for the shared 'general'
    poles. ``method="descriptions"``: the naive baseline, cosine to the one-line high description
    minus cosine to the low one. ``context="completion"`` (default) embeds the completion without
    its stem, so that the wording of a stem ("When I make a mistake...") does not decide the score;
    ``context="stem+completion"`` embeds both. The raw score is turned into a probability by Platt
    scaling (``Calibration``), which changes the scale only: the ranking, hence ROC AUC, is the raw
    score's.
    """

    name = "embedding"

    def __init__(
        self,
        descriptions: Descriptions | None = None,
        calibration: Calibration | str | Path | None = CALIBRATION_FILE,
        method: str = "exemplars",
        context: str = "completion",
    ):
        if method not in ("exemplars", "descriptions"):
            raise ValueError(f"method must be exemplars or descriptions, got {method!r}")
        if context not in ("completion", "stem+completion"):
            raise ValueError(f"context must be completion or stem+completion, got {context!r}")
        self.descriptions = descriptions or load_descriptions()
        self.method = method
        self.context = context
        if isinstance(calibration, (str, Path)):
            path = Path(calibration)
            if not path.exists():
                raise ConfigError(f"{path}: calibration file not found (pass calibration=None for the unfitted scale)")
            calibration = load_calibration(path)
            for name, wanted in (
                ("method", method),
                ("context", context),
                ("descriptions_version", self.descriptions.version),
            ):
                if str(getattr(calibration, name)) != str(wanted):
                    raise ConfigError(
                        f"{path}: field {name!r} is {getattr(calibration, name)!r} but the scorer uses {wanted!r}; "
                        "refit it (python -m valuelex.app.scorer_eval ... --write-calibration) or pass calibration=None"
                    )
        # calibration=None asks, explicitly, for the unfitted default scale (stated in fitted_on)
        self.calibration = calibration or Calibration(
            UNFITTED_SLOPE, 0.0, method, self.descriptions.version, context, UNFITTED
        )
        self._pole_vectors: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def _poles(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(high, low) pole embeddings of a sub-dimension or of 'general' (rows)."""
        if key not in self._pole_vectors:
            p = self.descriptions.general if key == "general" else self.descriptions.subdimensions[key]
            assert p is not None
            if self.method == "descriptions":
                high, low = [p.high_description], [p.low_description]
            else:
                high = list(p.high_exemplars) or [p.high_description]
                low = list(p.low_exemplars) or [p.low_description]
            self._pole_vectors[key] = (embed(high), embed(low))
        return self._pole_vectors[key]

    def raw(self, cases: pd.DataFrame) -> np.ndarray:
        """Uncalibrated contrast (high minus low similarity) of every case."""
        join = completion_only if self.context == "completion" else completion_text
        texts = [join(s, c) for s, c in zip(cases["stem"], cases["completion"], strict=True)]
        unique = sorted(set(texts))
        vectors = dict(zip(unique, embed(unique), strict=True))
        out = np.zeros(len(cases))
        use_general = self.method == "exemplars" and self.descriptions.general is not None
        for i, (text, sub) in enumerate(zip(texts, cases["subdimension"], strict=True)):
            v = vectors[text]
            high, low = self._poles(canonical_subdimension(sub))
            out[i] = (high @ v).mean() - (low @ v).mean()
            if use_general:
                g_high, g_low = self._poles("general")
                out[i] += (g_high @ v).mean() - (g_low @ v).mean()
        return out

    def fit_calibration(self, cases: pd.DataFrame, labels: Sequence[int], fitted_on: str = "") -> Calibration:
        """Fit Platt scaling (logistic regression of the label on the raw score) and use it from now on."""
        from sklearn.linear_model import LogisticRegression

        raw = self.raw(cases).reshape(-1, 1)
        clf = LogisticRegression(C=1e6, max_iter=10_000).fit(raw, np.asarray(labels, dtype=int))
        self.calibration = Calibration(
            float(clf.coef_[0, 0]),
            float(clf.intercept_[0]),
            self.method,
            self.descriptions.version,
            self.context,
            fitted_on or "unspecified",
            int(len(raw)),
        )
        return self.calibration

    def score(self, cases: pd.DataFrame) -> pd.DataFrame:
        out = cases.copy()
        raw = self.raw(cases) if len(cases) else np.zeros(0)
        out["raw"] = raw
        out["score"] = self.calibration.apply(raw)
        out["valid"] = True
        out["status"] = "ok"
        out["rationale"] = ""
        return out
