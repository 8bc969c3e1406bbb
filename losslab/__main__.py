"""``python -m losslab`` is the same as the ``losslab`` console script."""

import sys

from losslab.cli import main

if __name__ == "__main__":
    sys.exit(main())
