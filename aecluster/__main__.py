"""`python -m aecluster` runs the command line."""

import sys

from aecluster.cli import main

sys.exit(main())
