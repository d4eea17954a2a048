"""The domain methods, above the statistics and below the stages (``docs/architecture.md``): so far the
simulation study of notebook 07 (:mod:`valuelex.methods.simulation`); the other methods modules are still
at the top of the package (``tests/test_layers.py``, ``NOT_YET_PLACED``)."""
