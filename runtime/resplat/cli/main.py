"""Entry point of the ``resplat`` command line.

Every subcommand lives in its own module (``cmd_*.py``) exposing ``add_parser(subparsers)`` and
``run(args, progress)``. Errors caused by input (:class:`~resplat.errors.ResplatError`, missing
files, bad options) print one line ``resplat: error: ...`` on stderr and exit with status 2;
Ctrl-C exits with 130. A traceback means a bug in resplat.
"""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from ..errors import CancelledError, ResplatError
from . import cmd_convert, cmd_data, cmd_eval, cmd_optimize, cmd_reconstruct, cmd_render, cmd_train
from .progress import Progress

COMMANDS = (cmd_render, cmd_optimize, cmd_eval, cmd_convert, cmd_reconstruct, cmd_train, cmd_data)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, like every other input error
        self.exit(2, f"resplat: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand (also used to generate the README's usage)."""
    parser = _Parser(prog="resplat", description="ReSplat runtime: reconstruct, render, optimise, evaluate and convert Gaussian splat scenes.")
    parser.add_argument("--version", action="version", version=f"resplat {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for cmd in COMMANDS:
        p = cmd.add_parser(sub)
        p.add_argument(
            "--progress",
            choices=Progress.MODES,
            default=None,
            help="progress output: a bar on stderr (default on a terminal), JSON lines on stdout, or none",
        )
        p.set_defaults(_run=cmd.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    args = build_parser().parse_args(argv)
    mode = args.progress or ("bar" if sys.stderr.isatty() else "none")
    progress = Progress(mode)
    try:
        args._run(args, progress)
    except CancelledError as exc:
        progress.error(str(exc))
        print(f"resplat: cancelled: {exc}", file=sys.stderr)
        return 130
    except (ResplatError, FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        msg = str(exc) if isinstance(exc, ResplatError) else f"{exc.strerror}: {exc.filename}"
        progress.error(msg)
        print(f"resplat: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        progress.error("interrupted")
        print("resplat: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
