"""Pure estimators: no files, no run settings module, no plotting (issue 21's layer 1).

- :mod:`.polychoric`: polychoric and tetrachoric correlations (lavaan's ``lavCor``);
- :mod:`.efa`: exploratory factor analysis (``psych::fa``, ``fa.parallel``), its settings
  (:mod:`.efa.settings`) and the bootstrap stability;
- :mod:`.factor_count`: how sure the factor count is (seeds, subsamples, word caps);
- :mod:`.cfa`: confirmatory factor analysis (ML with semopy, fit indices as lavaan's) and :mod:`.cfa.wlsmv`
  (lavaan's WLSMV for ordered indicators);
- :mod:`.multilevel`: within- and between-model analysis (``psych::statsBy``);
- :mod:`.projection`: the 2-D map of the lexicon (UMAP as umap-learn computes it, the same bits on every CPU);

This layer imports only ``valuelex.core`` and itself (``tests/test_layers.py``); the figures of its
results are drawn in ``valuelex.plots``.
"""
