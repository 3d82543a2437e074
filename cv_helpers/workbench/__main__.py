"""`python -m cv_helpers.workbench ...`: see cv_helpers.workbench.cli."""
from .cli import main

raise SystemExit(main())
