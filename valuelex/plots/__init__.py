"""Figures: one function per figure, one style (issue 21: every ``plot_*`` function moves here).

- :mod:`.labels`: placing word labels on a map without overlaps;
- :mod:`.efa`: the EFA's scree plot, loadings heatmap and bootstrap congruence (notebooks 03, 07);
- :mod:`.cfa`: the CFA models' fit against the Hu & Bentler cut-offs (notebook 04);
- :mod:`.semantic`: the silhouette, the lexicon map by cluster, clusters against factors, the
  permutation baseline and the taxonomy assignment (notebook 05);
- :mod:`.human_values`: the calibrated thresholds, the coverage, the human categories and the
  frameworks' CFA (notebook 08);
- :mod:`.figure1`: the paper's Figure 1 (the lexicon map, the taxonomy wheel, the projective bars).

This layer draws what the layers below computed; it imports them, never the stages or the app
(``tests/test_layers.py``).
"""
