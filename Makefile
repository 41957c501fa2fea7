# The README's two commands: `make demo` and `make test`. Both build their own virtual environment.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: venv bytecode test test-fast demo clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python >= 3.11 is needed"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@# PyTorch (bayesian sampling) as its CPU-only build where a wheel of it is at hand: no CUDA libraries
	$(BIN)/pip install --quiet 'torch==2.13.0+cpu' 2>/dev/null || $(BIN)/pip install --quiet 'torch>=2.2'
	$(BIN)/pip install --quiet -e '.[airflow,test,bayesian]'
	rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

## The package's bytecode, as an installed package has it: an editable install has none, and where
## PYTHONDONTWRITEBYTECODE is set no import writes it, so every process would compile the sources again.
bytecode: $(STAMP)
	@$(BIN)/python -m compileall -q provider >/dev/null

## Everything: unit, conformance, property-based and end-to-end tests.
test: bytecode
	$(BIN)/python -m pytest -q -rs -p no:cacheprovider

## The quick loop: everything not marked slow.
test-fast: bytecode
	$(BIN)/python -m pytest -q -rs -p no:cacheprovider -m "not slow"

demo: bytecode
	@$(BIN)/python dags/demo.py

clean:
	rm -rf $(VENV) .mljobs
