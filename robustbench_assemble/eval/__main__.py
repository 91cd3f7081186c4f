"""``python -m robustbench_assemble.eval``: see :mod:`robustbench_assemble.eval.cli`."""

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
