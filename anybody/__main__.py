"""`python -m anybody ...` is the `anybody` command (what `accelerate launch -m anybody` and `torchrun -m` run)."""

import sys

from anybody.interfaces.cli import main

sys.exit(main())
