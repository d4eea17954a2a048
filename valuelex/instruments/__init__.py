"""The instruments: what the study asks and measures against, read from ``configs/`` (issue 21's layer 1).

- :mod:`.taxonomy`: the paper's taxonomy of LLM values (``configs/taxonomy.yaml``), the one loader.

This layer imports only ``valuelex.core`` and itself (``tests/test_layers.py``).
"""
