"""Stage 05, semantic clustering of the lexicon (the paper's step 3b): embed the words, choose the
number of clusters, name the clusters after the taxonomy, draw the map (our Figure 1b) and compare
the clusters with the factor analysis. Notebook ``05_semantic_clusters`` narrates
``stages.semantic.run(run)``; every setting is the run's ``semantic`` section.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .. import semantic
from ..core.display import Report
from ..plots.semantic import (
    plot_contingency,
    plot_permutation,
    plot_semantic_map,
    plot_silhouette,
    plot_taxonomy_assignment,
)
from .base import Figures, Output, Run, Stage

STAGE = Stage(
    number="05",
    name="semantic",
    notebook="05_semantic_clusters",
    inputs=("lexicon.csv", "efa_word_factors.csv"),
    outputs=(
        Output("semantic_template_check", "table"),
        Output("semantic_silhouette", "table"),
        Output("semantic_silhouette", "figure"),
        Output("semantic_map", "figure"),
        Output("semantic_clusters", "data"),
        Output("semantic_vs_efa_contingency", "figure", optional=True),  # needs notebook 03's factors
        Output("semantic_vs_efa_agreement", "table", optional=True),
        Output("semantic_vs_efa_permutation", "figure", optional=True),
        Output("semantic_taxonomy_assignment", "table"),
        Output("semantic_taxonomy_assignment", "figure"),
        Output("semantic_taxonomy_assignment_sub", "table", optional=True),  # when k = 6 is among the ks shown
        Output("semantic_taxonomy_assignment_sub", "figure", optional=True),
    ),
)


@dataclass(repr=False)
class SemanticResult(Report):
    """What stage 05 computed. Tables are attributes; figures are ``figures.<name>``; ``notes`` are the
    sentences a reader needs beside them (what was embedded, the best k, a missing input)."""

    words: list[str]
    template: str
    model_id: str
    embedded_now: int
    dimensions: int  # of an embedding
    taxonomy: pd.DataFrame  # the example words (configs/taxonomy.yaml)
    loo_dimension: float  # example words nearest their own dimension, leave one out
    loo_subdimension: float
    examples: list[str]  # example words found in the lexicon
    templates: pd.DataFrame  # the same check for every context template
    silhouettes: pd.DataFrame
    k_best: int
    ks: list[int]  # the numbers of clusters shown (the best, the main one, 6)
    k_main: int
    labels_by_k: dict[int, np.ndarray]
    assignment: pd.DataFrame  # the main clustering's clusters against the dimensions
    word_table: pd.DataFrame  # data/processed/semantic_clusters.csv
    projection: str
    efa_available: bool
    contingency: pd.DataFrame | None  # clusters x EFA factors
    agreement: pd.DataFrame | None  # ARI and NMI against a permutation null, per k
    dimension_table: pd.DataFrame  # clusters and EFA factors against the dimensions
    subdimension_table: pd.DataFrame | None
    figures: Figures
    k_range: tuple[int, int]
    efa_agreement: Any = None  # the main clustering's agreement result
    efa_factor_dimensions: list[str] | None = None
    efa_factors: int = 0

    title = "Semantic clusters of the lexicon"

    @property
    def silhouette(self) -> pd.Series:
        return self.silhouettes.set_index("k")["silhouette"]

    @property
    def k_best_at_edge(self) -> bool:
        return bool(self.k_best in (self.silhouettes["k"].min(), self.silhouettes["k"].max()))

    @property
    def cluster_sizes(self) -> pd.DataFrame:
        """Words per cluster, for each number of clusters shown."""
        return pd.DataFrame(
            {f"k = {k}": pd.Series(labels).value_counts().sort_index() for k, labels in self.labels_by_k.items()}
        ).rename_axis("cluster")

    def embedding_note(self) -> str:
        """What was embedded, with which model, and how much came from the cache."""
        return (
            f"{len(self.words)} words embedded as {self.template!r} with {self.model_id}: {self.dimensions} dimensions\n"
            f"texts sent to the model in this run: {self.embedded_now} (0 = everything came from the cache)"
        )

    def taxonomy_note(self) -> str:
        """How well the taxonomy's example words find their own dimension, and which are in the lexicon."""
        return (
            f"{len(self.taxonomy)} example words; nearest own dimension (leave-one-out): {self.loo_dimension:.0%}, "
            f"own sub-dimension: {self.loo_subdimension:.0%}\n"
            f"example words found in the lexicon ({len(self.examples)}): {', '.join(sorted(self.examples)) or 'none'}"
        )

    def silhouette_note(self) -> str:
        sil = self.silhouette
        text = (
            f"best k = {self.k_best} (silhouette {sil[self.k_best]:.3f}); silhouettes span {sil.min():.3f} "
            f"to {sil.max():.3f}"
        )
        if self.k_best_at_edge:
            low, high = self.k_range
            text += f"\nnote: the best k is at the edge of the range searched ({low}..{high}): widen it before reading much into it"
        return text

    def efa_note(self) -> str:
        if self.efa_available:
            return ""
        return (
            "No data/processed/efa_word_factors.csv: run notebook 03 (factor analysis) first to compare the "
            "semantic clusters with the EFA factors. Skipping this section."
        )

    def sections(self) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = [("", self.embedding_note()), ("", self.taxonomy_note())]
        out.append(("Silhouette by number of clusters", self.silhouettes))
        out.append(("", self.silhouette_note()))
        out.append((f"Clusters (k = {self.k_main}) against the dimensions", self.assignment))
        if self.agreement is not None:
            out.append(("Agreement with the EFA factors", self.agreement))
        elif self.efa_note():
            out.append(("", self.efa_note()))
        return out

    def metrics(self) -> dict[str, Any]:
        sil = self.silhouette
        m: dict[str, Any] = {
            "n_words": len(self.words),
            "embedding_dim": self.dimensions,
            "embedded_now": self.embedded_now,
            "template": self.template,
            "loo_dimension_accuracy": self.loo_dimension,
            "loo_subdimension_accuracy": self.loo_subdimension,
            "n_examples_in_lexicon": len(self.examples),
            "k_best": self.k_best,
            "k_best_at_edge": self.k_best_at_edge,
            "silhouette_best": sil[self.k_best],
            "silhouette_spread": sil.max() - sil.min(),
            "silhouette_k3": sil.get(3),
            "silhouette_k6": sil.get(6),
            "ks_shown": self.ks,
            "cluster_sizes_main": pd.Series(self.labels_by_k[self.k_main]).value_counts().sort_index().tolist(),
            "main_cluster_dimensions": self.assignment["best"].tolist(),
            "main_cluster_flags": self.assignment["flag"].tolist(),
            "dimensions_covered": sorted(set(self.assignment["best"])),
            "projection": self.projection,
            "efa_available": self.efa_available,
        }
        if self.efa_factor_dimensions is not None:
            m["efa_factor_dimensions"] = self.efa_factor_dimensions
        main = self.efa_agreement
        if main is not None:
            m.update(
                efa_words_compared=main.n_words,
                efa_factors=self.efa_factors,
                ari_main=main.ari,
                nmi_main=main.nmi,
                p_ari_main=main.p_ari,
                p_nmi_main=main.p_nmi,
            )
        return m


def run(run: Run) -> SemanticResult:
    """Embed, cluster, name, map and compare; save the stage's declared outputs."""
    s, folders = run.settings.semantic, run.folders
    figures = Figures()

    # 1. the words and their embeddings; the taxonomy's example words, embedded the same way
    lexicon = semantic.read_lexicon(folders.processed / "lexicon.csv", min_count=s.min_count)
    words = lexicon["word"].tolist()
    context = semantic.resolve_template(s.template)
    embedder = semantic.Embedder(s.model_dir, cache_dir=folders.embeddings)
    vectors = embedder.embed_words(words, context)
    embedded_now = embedder.encoded
    taxonomy = semantic.load_taxonomy()
    taxonomy_vectors = embedder.embed_words(taxonomy["word"].tolist(), context)
    loo_dimension = semantic.leave_one_out_accuracy(taxonomy_vectors, taxonomy["dimension"])
    loo_subdimension = semantic.leave_one_out_accuracy(taxonomy_vectors, taxonomy["subdimension"])
    examples = semantic.example_words_in(words, taxonomy)
    templates, _ = semantic.load_templates()
    templates_table = semantic.template_check(embedder, taxonomy, templates)
    run.save_table(templates_table, "semantic_template_check")

    # 2. how many clusters
    silhouettes = semantic.silhouette_table(vectors, range(s.k_min, s.k_max + 1), method=s.method, seed=s.seed)
    k_best = semantic.best_k(silhouettes)
    ks = semantic.shown_ks(k_best, main=s.k_main, n_words=len(words))
    run.save_table(silhouettes, "semantic_silhouette")
    figures["silhouette"] = plot_silhouette(silhouettes, k_best)
    run.save_figure(figures["silhouette"], "semantic_silhouette")
    labels_by_k = {k: semantic.cluster(vectors, k, method=s.method, seed=s.seed) for k in ks}

    # 3. naming the clusters after the taxonomy
    assign_options = {"tie_margin": s.tie_margin, "weak_margin": s.weak_margin, "seed": s.seed}
    assignment = semantic.assign_to_taxonomy(
        vectors, labels_by_k[s.k_main], taxonomy_vectors, taxonomy["dimension"], **assign_options
    )
    parts_dim = {f"{s.method} k={s.k_main}": assignment}
    parts_sub = {}
    if 6 in labels_by_k:
        parts_sub[f"{s.method} k=6"] = semantic.assign_to_taxonomy(
            vectors, labels_by_k[6], taxonomy_vectors, taxonomy["subdimension"], **assign_options
        )

    # 4. the map (our Figure 1b) and the per-word table the later notebooks read
    coords = semantic.project_2d(vectors, method=s.projection, seed=s.seed)
    frequent = lexicon.sort_values(["count", "word"], ascending=[False, True])["word"].head(s.label_top).tolist()
    names = {s.k_main: semantic.assignment_names(assignment)}
    if 6 in labels_by_k and s.k_main != 6:
        names[6] = semantic.assignment_names(parts_sub[f"{s.method} k=6"])
    figures["map"] = plot_semantic_map(coords, words, labels_by_k, examples, names, extra_labels=frequent)
    run.save_figure(figures["map"], "semantic_map")
    word_table = lexicon[["word", "count"]].assign(x=coords[:, 0], y=coords[:, 1])
    for k, labels in labels_by_k.items():
        word_table[f"cluster_k{k}"] = labels
    nearest = semantic.nearest_category(vectors, taxonomy_vectors, taxonomy["dimension"])
    word_table["nearest_dimension"] = nearest["nearest"].to_numpy()
    word_table["dimension_margin"] = nearest["margin"].to_numpy()
    word_table["dimension_tie"] = nearest["tie"].to_numpy()  # margin below precision.TIE_TOLERANCE
    run.save_data(word_table, "semantic_clusters")

    # 5. agreement with the factor analysis (notebook 03's factors, when it ran)
    efa = semantic.read_efa_factors(folders.processed / "efa_word_factors.csv")
    contingency = agreement = main = efa_factor_dimensions = None
    efa_factors = 0
    if efa is not None:
        positive = efa[(efa["loading"] > 0) & efa["word"].isin(words)]
        factor_vectors = vectors[[words.index(w) for w in positive["word"]]]
        if len(positive):
            parts_dim["EFA"] = semantic.assign_to_taxonomy(
                factor_vectors, positive["factor"].tolist(), taxonomy_vectors, taxonomy["dimension"], **assign_options
            )
            parts_sub["EFA"] = semantic.assign_to_taxonomy(
                factor_vectors,
                positive["factor"].tolist(),
                taxonomy_vectors,
                taxonomy["subdimension"],
                **assign_options,
            )
            efa_factor_dimensions = parts_dim["EFA"]["best"].tolist()
        factors = efa.set_index("word")["factor"]
        clusters_by_k = {k: pd.Series(labels, index=words) for k, labels in labels_by_k.items()}
        contingency = semantic.contingency(clusters_by_k[s.k_main], factors)
        factor_names = semantic.assignment_names(parts_dim["EFA"]) if "EFA" in parts_dim else {}
        figures["contingency"] = plot_contingency(
            contingency,
            f"{s.method} clusters (k = {s.k_main}) against EFA factors",
            row_names=names[s.k_main],
            column_names=factor_names,
        )
        run.save_figure(figures["contingency"], "semantic_vs_efa_contingency")
        results = {
            f"k = {k}": semantic.agreement(clusters_by_k[k], factors, n_permutations=s.n_permutations, seed=s.seed)
            for k in ks
        }
        agreement = pd.DataFrame([{"clustering": name, **res.summary()} for name, res in results.items()])
        run.save_table(agreement, "semantic_vs_efa_agreement")
        figures["permutation"] = plot_permutation(results)
        run.save_figure(figures["permutation"], "semantic_vs_efa_permutation")
        main = results[f"k = {s.k_main}"]
        efa_factors = int(efa["factor"].nunique())

    # 6. clusters and factors against the taxonomy, one table per level
    dimension_table = semantic.combine_assignments(parts_dim)
    dimensions = list(dict.fromkeys(taxonomy["dimension"]))
    run.save_table(dimension_table, "semantic_taxonomy_assignment")
    figures["taxonomy_assignment"] = plot_taxonomy_assignment(
        dimension_table, dimensions, "Clusters and factors against the dimensions"
    )
    run.save_figure(figures["taxonomy_assignment"], "semantic_taxonomy_assignment")
    sub_table = None
    if parts_sub:
        sub_table = semantic.combine_assignments(parts_sub)
        subdimensions = list(dict.fromkeys(taxonomy["subdimension"]))
        run.save_table(sub_table, "semantic_taxonomy_assignment_sub")
        figures["taxonomy_assignment_sub"] = plot_taxonomy_assignment(
            sub_table, subdimensions, "Clusters and factors against the sub-dimensions"
        )
        run.save_figure(figures["taxonomy_assignment_sub"], "semantic_taxonomy_assignment_sub")

    for fig in figures.values():  # shown where the notebook names them
        plt.close(fig)
    return SemanticResult(
        words=words, template=context, model_id=embedder.model_id, embedded_now=embedded_now,
        dimensions=int(vectors.shape[1]), taxonomy=taxonomy, loo_dimension=loo_dimension,
        loo_subdimension=loo_subdimension, examples=examples, templates=templates_table, silhouettes=silhouettes,
        k_best=k_best, ks=ks, k_main=s.k_main, labels_by_k=labels_by_k, assignment=assignment,
        word_table=word_table, projection=s.projection, efa_available=efa is not None, contingency=contingency,
        agreement=agreement, dimension_table=dimension_table, subdimension_table=sub_table, figures=figures,
        k_range=(s.k_min, s.k_max), efa_agreement=main, efa_factor_dimensions=efa_factor_dimensions,
        efa_factors=efa_factors,
    )  # fmt: skip
