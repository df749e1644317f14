# The README's two commands are `make demo` and `make test`; the rest are steps behind them.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: setup demo test test-fast lint perf ui notebook clean

$(BIN)/sam3ops: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e '.[dev,meta]'
	$(BIN)/pip install --no-deps 'sam3==0.1.4'  # Meta's package without its pins (pyproject's `meta` extra)
	@touch $@

## setup: create .venv and install sam3ops with its test extras
setup: $(BIN)/sam3ops

## demo: the main job on the embedded default (sqlite tracking, CPU, tiny preset)
demo: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" MLFLOW_EXPERIMENT_NAME=sam3-pipeline \
		$(BIN)/mlflow run . -e main --env-manager local
	@$(BIN)/python -c 'from sam3ops.pipeline.summary import ui_line; print(ui_line(mlflow="$(BIN)/mlflow"))'

## test: the whole test suite (CPU, no network): what CI runs
test: setup
	$(BIN)/python -m pytest

## test-fast: the fast lane for iteration (no end-to-end subprocess, server or browser tests; minutes)
test-fast: setup
	$(BIN)/python -m pytest -m "not slow" -q

## lint: ruff over the package, the tests and the benchmarks (configured in pyproject.toml)
lint: setup
	$(BIN)/ruff check sam3ops tests benchmarks

## perf: benchmarks that write benchmarks/REPORT.md (slow: minutes, several GB of disk)
perf: setup
	$(BIN)/python -m benchmarks.weights_stage
	$(BIN)/python -m benchmarks.bench_sweeps cpu

## notebook: JupyterLab with notebooks/sam3_test.ipynb and notebooks/benchmark.ipynb open (the
## `notebooks` extra, part of dev; NOTEBOOK_ARGS go to `jupyter lab`, e.g. --no-browser or --port=8890)
NOTEBOOK_ARGS ?=
notebook: setup
	$(BIN)/jupyter lab workspaces import notebooks/sam3ops.jupyterlab-workspace
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/jupyter lab --LabApp.default_url=/lab/workspaces/sam3ops $(NOTEBOOK_ARGS)

## ui: the MLflow UI on the embedded store
ui: setup
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db

clean:
	rm -rf $(VENV) mlflow.db mlruns
