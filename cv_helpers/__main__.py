"""`python -m cv_helpers ...`: the old spelling of `python -m cv_helpers.workbench ...`, kept for existing scripts."""
from .workbench.cli import main

raise SystemExit(main())
