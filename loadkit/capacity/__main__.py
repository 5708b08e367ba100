"""`python -m loadkit.capacity`: see loadkit.capacity.cli."""

import sys

from loadkit.capacity.cli import main

if __name__ == "__main__":
    sys.exit(main())
