"""`python -m aecluster.plots FIGURE ARGS...`: the same as `aecluster plots FIGURE ARGS...`."""

import sys

from aecluster.cli.plots import main

sys.exit(main())
