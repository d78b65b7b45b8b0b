# kitpy developer commands. Everything runs inside a local virtualenv in .venv/.
#   make run    set up and start the example service (examples/stringsvc)
#   make test   set up, then lint, type-check and run the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ARGS   ?=

.PHONY: install run test lint typecheck pytest proto bench soak clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[all,dev]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m examples.stringsvc $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy kitpy examples tests bench

pytest: $(STAMP)
	$(BIN)/pytest $(ARGS)

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python bench/endpoint_chain.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
