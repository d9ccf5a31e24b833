# g3an: `make test` and `make demo` set up their own environment.
# On a CPU machine the torch wheel is pinned (TORCH_SPEC); elsewhere any torch >= 2.4 works:
#   make test TORCH_SPEC='torch>=2.4'
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.g3an-installed

.PHONY: test lint install demo clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ".[dev,faces]"
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q

# data, fine-tuning of the shipped model, samples, manipulations, metrics -> runs/demo/report.html
demo: $(STAMP)
	$(BIN)/g3an demo --out runs/demo

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .ruff_cache
