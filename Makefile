# One-step set-up and the two README commands. Set-up is idempotent: the venv is (re)installed
# only when a requirements file or pyproject.toml changes.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --disable-pip-version-check -q
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: setup setup-dev run test lint benchmark clean

setup: $(STAMP)
setup-dev: $(DEV_STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) -r requirements.txt
	$(PIP) --no-build-isolation --no-deps -e .
	$(PY) -m pip check
	$(PY) -c "import smallseg, mmseg.models; print('smallseg environment ready')"
	touch $(STAMP)

$(DEV_STAMP): $(STAMP) requirements-dev.txt
	$(PIP) -r requirements-dev.txt
	touch $(DEV_STAMP)

## Main job: generate the default dataset, train DeepLabV3+ and U-Net, test both, write results.json.
run: setup
	$(PY) tools/run_all.py

## Test suite (what .ci/run calls).
test: setup-dev
	$(PY) -m pytest -q tests

lint: setup-dev
	$(VENV)/bin/ruff check smallseg tools eda datasets tests

# step and epoch breakdown of both default configs, epoch times side by side with BENCH_REV
BENCH_REV ?= main
benchmark: setup
	$(PY) tools/benchmark.py configs/deeplabv3plus_r50.py configs/unet_r34.py --compare $(BENCH_REV)

clean:
	rm -rf $(VENV) work_dirs data eda_results
