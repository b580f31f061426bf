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
    """The `aecluster` parser with every command module's subcommands registered.

    Returns
    -------
    OneLineErrorParser
        The parser: --version and one subcommand per command (`train`, `cluster`, `predict`,
        `plots`, `size`, ...), each with its handler set as the `handler` default.
    """
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
    """Entry point: runs a command; user mistakes print one line and return 2.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after the program name; None reads `sys.argv[1:]`.

    Returns
    -------
    int
        The exit code: the command handler's (0 on success), 2 when no command is given (the help
        is printed) or for a user's mistake, 130 when interrupted (`run_reporting_errors`).

    Raises
    ------
    SystemExit
        From argparse, for --help and --version (exit status 0).
    """
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
