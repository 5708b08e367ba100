"""`python -m loadkit.render RUN_DIR`: render a run folder into Markdown and PNG charts.

The command's home is `loadkit.report.render`; this entry module keeps the documented command.
"""

import sys

from loadkit.report.render import main

if __name__ == "__main__":
    sys.exit(main())
