"""``python -m resplat``: the same as the ``resplat`` console script."""

from resplat.cli.main import main

raise SystemExit(main())
