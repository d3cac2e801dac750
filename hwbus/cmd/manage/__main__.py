"""``python -m hwbus.cmd.manage``: hwbus-manage."""

import sys

from hwbus.cmd.manage import main

if __name__ == '__main__':  # not when a test imports every module
    sys.exit(main())
