"""The two rooms: the course core (cv_helpers/*.py) never imports the workbench (cv_helpers/workbench/)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parent.parent / "cv_helpers"


def test_the_course_core_imports_no_workbench_module():
    modules = sorted(path.stem for path in CORE.glob("*.py") if path.stem not in ("__init__", "__main__"))
    assert {"data", "models", "train", "transforms"} <= set(modules)
    code = "".join(f"import cv_helpers.{name}\n" for name in modules)
    code += "import sys\nprint(' '.join(sorted(m for m in sys.modules if m.startswith('cv_helpers.workbench'))))\n"
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.split() == [], f"the course core imports the workbench: {imported.stdout.strip()}"


def test_the_reading_order_names_files_that_exist():
    import cv_helpers

    named = [line.split()[0] for line in cv_helpers.__doc__.splitlines()
             if line.startswith("    ") and line.split()[0].endswith(".py")]
    assert len(named) >= 5 and all((CORE / name).is_file() for name in named), named
