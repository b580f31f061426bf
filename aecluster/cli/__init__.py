"""Command line: `aecluster COMMAND ...`, a thin layer over the library; one module per group of
commands, each adding its subcommands with `register`.

Heavy libraries are imported inside the commands, so `aecluster --help` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from aecluster.cli import cluster, plots, predict, tools, train
from aecluster.cli.args import OneLineErrorParser
from aecluster.cli.errors import run_reporting_errors
from aecluster.version import __version__


def build_parser() -> argparse.ArgumentParser:
    """The `aecluster` parser with every command module's subcommands registered."""
    parser = OneLineErrorParser(
        prog="aecluster",
        description="Unsupervised clustering of 32x32 RGB images into two groups (or K) with a "
                    "convolutional autoencoder. Images: a (N,32,32,3) uint8 .npy file or a folder of PNG/JPG.")
    parser.add_argument("--version", action="version", version=f"aecluster {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    train.register(commands)
    cluster.register(commands)
    predict.register(commands)
    plots.register(commands)
    tools.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: runs a command; user mistakes print one line and return 2."""
    parser = build_parser()

    def run() -> int:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
        if not getattr(args, "handler", None):
            parser.print_help()
            return 2
        return args.handler(args)

    return run_reporting_errors("aecluster", run)


if __name__ == "__main__":
    sys.exit(main())
