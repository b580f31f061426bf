"""Command line: `aecluster COMMAND ...`, a thin layer over the library; one module per group of
commands, each adding its subcommands with `register`.

Heavy libraries are imported inside the commands, so `aecluster --help` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from aecluster import __version__
from aecluster.cli import cluster, tools, train
from aecluster.errors import run_reporting_errors


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aecluster",
        description="Unsupervised two-way clustering of 32x32 RGB images with a convolutional "
                    "autoencoder. Images: a (N,32,32,3) uint8 .npy file or a folder of PNG/JPG.")
    parser.add_argument("--version", action="version", version=f"aecluster {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    train.register(commands)
    cluster.register(commands)
    commands.add_parser("plots", help="draw figures (same as python -m aecluster.plots)", add_help=False)
    tools.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: runs a command; user mistakes print one line and return 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["plots"]:
        from aecluster.plots import main as plots_main

        return plots_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    return run_reporting_errors("aecluster", lambda: args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
