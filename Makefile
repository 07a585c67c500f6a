# Two commands on a fresh machine: `make run` and `make test`. Both build .venv themselves.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Torch is installed first so a user can choose a build for their CUDA, e.g.
#   make run TORCH_SPEC="torch==2.14.1 torchvision==0.29.1 --index-url https://download.pytorch.org/whl/cu126"
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
DATA_DIR ?= data/synthetic-hbn
TUH_DIR ?= data/synthetic-tuh
CACHE_DIR ?= cache
STAMP := $(VENV)/.installed

.PHONY: run prepare test test-slow bench lint install ui clean-cache

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

$(DATA_DIR)/.complete: | $(STAMP)
	$(PY) -m eegphase.synth out=$(DATA_DIR)

$(TUH_DIR)/.complete: | $(STAMP)
	$(PY) -m eegphase.synth mode=tuh out=$(TUH_DIR)

# The main job: the full multi-phase pipeline and the supervised baseline on the synthetic HBN-like data,
# then the comparison table (also logged to MLflow; browse it with `make ui`).
RUN_ARGS ?=
run: $(STAMP) $(DATA_DIR)/.complete
	$(PY) -m eegphase.run +pipeline=full data.root=$(DATA_DIR) cache_dir=$(CACHE_DIR) $(RUN_ARGS)
	$(PY) -m eegphase.run +pipeline=baseline data.root=$(DATA_DIR) cache_dir=$(CACHE_DIR) $(RUN_ARGS)
	$(PY) -m eegphase.report --experiment eegphase --name make-run
	@echo "MLflow UI: make ui, then open http://127.0.0.1:5000 (experiment 'eegphase'; filter tags.eegphase.phase = 'pipeline')"

prepare: $(STAMP) $(DATA_DIR)/.complete $(TUH_DIR)/.complete
	$(PY) -m eegphase.prepare data=hbn_tuh data.root=$(DATA_DIR) data.tuh_root=$(TUH_DIR) cache_dir=$(CACHE_DIR)

test: $(STAMP)
	$(PY) -m pytest -q

# The longer end-to-end checks (marked slow): real-EEG learning, the decodable synthetic dataset, big grids.
test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

bench: $(STAMP)
	$(PY) -m eegphase.bench data
	$(PY) -m eegphase.bench train

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/ruff format --check src tests

ui: $(STAMP)
	$(PY) -m eegphase.tracking.server ui --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1 --port 5000

clean-cache:
	rm -rf $(CACHE_DIR)
