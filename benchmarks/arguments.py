"""What every benchmark's command line shares, torch-free: the repository root, the parser with
real defaults in its help, and comma-separated number lists."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def benchmark_parser(doc: str) -> argparse.ArgumentParser:
    """A benchmark's parser: its docstring's first paragraph as the description, and each
    option's real default appended to its help."""
    from aecluster.cli.args import DefaultsHelpFormatter

    return argparse.ArgumentParser(description=" ".join(doc.split("\n\n")[0].split()),
                                   formatter_class=DefaultsHelpFormatter)


def number_list(convert: Callable[[str], float]) -> Callable[[str], list]:
    """An argparse type for comma-separated numbers ("0,1,2"), with a one-line error otherwise."""
    def parse(text: str) -> list:
        try:
            values = [convert(part) for part in text.split(",")]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated {convert.__name__} values such as 0,1,2, found {text!r}") from None
        if any(value < 0 for value in values):
            raise argparse.ArgumentTypeError(f"expected non-negative values, found {text!r}")
        return values

    return parse
