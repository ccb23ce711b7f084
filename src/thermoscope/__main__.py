"""``python -m thermoscope`` runs the command line."""

import sys

from thermoscope.cli import main

sys.exit(main())
