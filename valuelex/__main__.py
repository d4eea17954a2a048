"""``python -m valuelex``: the ``valuelex`` command (see :mod:`valuelex.cli`)."""

from valuelex.cli import main

raise SystemExit(main())
