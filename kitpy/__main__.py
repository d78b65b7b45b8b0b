"""``python -m kitpy``: the kitpy command line (see :mod:`kitpy.scaffold.cli`)."""

import sys

from kitpy.scaffold.cli import main

if __name__ == "__main__":
    sys.exit(main())
