"""`python -m scalelab.cli ...`, as the tests and a checkout without an install run it."""

import sys

from scalelab.cli.app import main

sys.exit(main())
