"""Stand-alone converters run as ``python -m resplat.tools.<name>``."""
