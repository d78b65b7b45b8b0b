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
	$(BIN)/pip install --quiet -e ".[all,dev,bench]"
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

# Regenerate examples/stringsvc/pb/ from stringsvc.proto (examples/stringsvc/tests checks it is current).
proto: $(STAMP)
	$(BIN)/python -m grpc_tools.protoc -Iexamples/stringsvc/pb=examples/stringsvc \
		--python_out=. --pyi_out=. --grpc_python_out=. examples/stringsvc/stringsvc.proto

# The benchmark report (bench/README.md, bench/report.png); ARGS=--quick for a one-minute run.
bench: $(STAMP)
	$(BIN)/python bench/report.py $(ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
