"""The top layer: the commands and what runs the notebooks.

- :mod:`.cli`: the ``valuelex`` command (``python -m valuelex``);
- :mod:`.pipeline`: runs the notebooks of a run in order, and says which outputs are stale;
- :mod:`.plan` and :mod:`.preflight`: what a live run would call and cost, and which models answer;
- :mod:`.tutorial`: the executed notebooks as the HTML tutorial;
- :mod:`.notebook_hygiene`: source notebooks carry no outputs (``python -m valuelex.app.notebook_hygiene``);
- :mod:`.scorer_eval`: validating a projective-test scorer (``valuelex scorer-eval``).

Everything below may be imported here; nothing below imports this layer (``tests/test_layers.py``).
"""
