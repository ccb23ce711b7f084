"""``python -m thermoscope.cli`` runs the command line."""

import sys

from thermoscope.cli import main

sys.exit(main())
