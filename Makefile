# One-step set-up and the two README commands. `make setup` is idempotent: the venv is
# (re)built only when requirements.txt changes.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run test lint benchmark clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	$(PY) -m pip install --disable-pip-version-check -q --no-build-isolation --no-deps -e .
	$(PY) -m pip check
	$(PY) -c "import smallseg, mmseg.models; print('smallseg environment ready')"
	touch $(STAMP)

## Main job: generate the default dataset, train DeepLabV3+ and U-Net, test both, write results.json.
run: setup
	$(PY) tools/run_all.py

## Test suite (what .ci/run calls).
test: setup
	$(PY) -m pytest -q tests

lint: setup
	$(VENV)/bin/ruff check smallseg tools eda datasets tests

benchmark: setup
	$(PY) tools/benchmark.py configs/deeplabv3plus_r50.py

clean:
	rm -rf $(VENV) work_dirs data eda_results
