"""`python -m loadkit.compare OLD NEW`: compare two run folders against the targets' tolerances.

The command's home is `loadkit.report.compare`; this entry module keeps the documented command.
"""

import sys

from loadkit.report.compare import main

if __name__ == "__main__":
    sys.exit(main())
