"""``python -m valuelex``: the ``valuelex`` command (see :mod:`valuelex.app.cli`)."""

from valuelex.app.cli import main

raise SystemExit(main())
