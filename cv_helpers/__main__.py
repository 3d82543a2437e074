"""`python -m cv_helpers ...`: see cv_helpers.cli."""
from .cli import main

raise SystemExit(main())
