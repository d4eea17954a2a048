"""The instruments: what the study asks and measures against, read from ``configs/`` (issue 21's layer 1).

- :mod:`.taxonomy`: the paper's taxonomy of LLM values (``configs/taxonomy.yaml``), the one loader.
- :mod:`.embedding`: the sentence-embedding model, the one loader (semantic clusters, human values, the
  projective embedding scorer).

This layer imports only ``valuelex.core`` and itself (``tests/test_layers.py``).
"""
