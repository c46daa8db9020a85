"""``python -m spikeinterface_sero.cli``."""

import sys

from . import main

sys.exit(main())
