"""`python -m aecluster.plots FIGURE ARGS...`: the same as `aecluster plots FIGURE ARGS...`."""

import sys

from aecluster.cli import main

sys.exit(main(["plots", *sys.argv[1:]]))
