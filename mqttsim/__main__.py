"""``python -m mqttsim`` runs the same command line as the ``mqttsim`` script."""

import sys

from .cli import main

sys.exit(main())
