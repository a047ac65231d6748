"""The ``resplat`` command line: ``render``, ``optimize``, ``eval``, ``convert`` (see :mod:`.main`)."""
