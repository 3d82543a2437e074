# cv-workbook: `make report` runs the main job, `make test` the tests. Both install what is missing first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export CV_HELPERS_DATA ?= $(CURDIR)/data
SHARED_DATA := $(CURDIR)/../shared/data/unpack.py
STL10_SAMPLE := $(CURDIR)/../shared/data/stl10_sample

.PHONY: install data report test smoke-report benchmark lab student check submission

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

# Course machines unpack the shipped copy; anywhere else the official archives are downloaded.
data: install
	@if [ -f "$(SHARED_DATA)" ]; then $(PY) "$(SHARED_DATA)" --out "$(CV_HELPERS_DATA)"; \
	elif [ ! -f "$(CV_HELPERS_DATA)/cifar100/train_images.npy" ]; then \
	  $(PY) -m cv_helpers prepare-data --out "$(CV_HELPERS_DATA)"; fi
	@# STL-10: the course machines' real 219-image sample, converted like the official archive (if none is prepared)
	@if [ ! -f "$(CV_HELPERS_DATA)/stl10/meta.json" ] && [ -d "$(STL10_SAMPLE)" ]; then \
	  $(PY) -m cv_helpers prepare-data --datasets stl10 --stl10-sample "$(STL10_SAMPLE)" --out "$(CV_HELPERS_DATA)"; fi

report: data
	$(PY) -m cv_helpers run-notebooks
	$(PY) -m cv_helpers report-tables

smoke-report: data
	CV_HELPERS_SMOKE=1 $(PY) -m cv_helpers run-notebooks

test: data
	$(PY) -m pytest

# The student edition: every solution region of the package and the notebooks a stub (see workbench/edition.py).
STUDENT ?= student-edition
student: install
	$(PY) -m cv_helpers.workbench edition student "$(STUDENT)"

# The course's hand-in zip (ID1_ID2_ID3_part2.zip) from report/ and the group's group.csv
# (name,student_id,research,programming,writing; one member a line).
submission: install
	$(PY) -m cv_helpers.workbench submission --group group.csv

# The self-check: each task's points from the checks in checks/ (in the student edition: the student's code).
check: data
	$(PY) -m cv_helpers.workbench check

benchmark: data
	$(PY) benchmarks/bench_training.py

# JupyterLab in the project's environment, with the data folder set (Ctrl-C stops it).
lab: data
	$(PY) -m jupyter lab --notebook-dir=notebooks
