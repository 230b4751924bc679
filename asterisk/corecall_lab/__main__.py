"""``python -m corecall_lab``: the same as the ``corecall-lab`` command."""

import sys

from corecall_lab.lab import main

sys.exit(main())
