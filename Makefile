# kitpy developer commands. Everything runs inside a local virtualenv in .venv/.
#   make run    set up and start the example service (examples/stringsvc)
#   make test   set up, then lint, type-check and run the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ARGS   ?=

.PHONY: install run test lint typecheck pytest docs scaffold-check proto bench bench-instructions soak fuzz clean

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

test: lint typecheck pytest docs

# The docs site (docs/, mkdocs.yml) into build/site; any warning fails the build.
docs: $(STAMP)
	$(BIN)/mkdocs build --strict --quiet --site-dir build/site

# Slow, not part of `make test`: generate a service with `kitpy new` into a temporary folder
# and run its own `make test` in its own venv; the generated Makefile installs this checkout.
scaffold-check: $(STAMP)
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(BIN)/python -m kitpy new scaffold_check --dir "$$tmp" && \
	$(MAKE) -C "$$tmp/scaffold_check" test PYTHON=$(PYTHON)

# Regenerate examples/stringsvc/pb/ from stringsvc.proto (examples/stringsvc/tests checks it is current).
proto: $(STAMP)
	$(BIN)/python -m grpc_tools.protoc -Iexamples/stringsvc/pb=examples/stringsvc \
		--python_out=. --pyi_out=. --grpc_python_out=. examples/stringsvc/stringsvc.proto

# The benchmark report (bench/README.md, bench/report.png); ARGS=--quick for a one-minute run.
# HTTP is driven by wrk: a Python load client would be the bottleneck and make HTTP ratios meaningless.
bench: $(STAMP)
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		apt-get install -y -qq wrk >/dev/null; } || \
		{ echo "make bench needs wrk (Debian package wrk): sudo apt-get install wrk" >&2; exit 1; }
	$(BIN)/python bench/report.py $(ARGS)

# Instructions per request under callgrind (bench/instructions.py): a noise-free kitpy/raw ratio;
# ARGS="--transport grpc --variants kitpy,full_stack_0" to choose what is counted.
bench-instructions: $(STAMP)
	@for tool in valgrind wrk; do command -v $$tool >/dev/null || { [ "$$(id -u)" = 0 ] && \
		command -v apt-get >/dev/null && apt-get install -y -qq $$tool >/dev/null; } || \
		{ echo "make bench-instructions needs $$tool (Debian package $$tool)" >&2; exit 1; }; done
	$(BIN)/python bench/instructions.py $(ARGS)

# Long fuzzing (not part of `make test`): hypothesis with many examples, then atheris (fuzz/).
FUZZ_EXAMPLES ?= 2000
FUZZ_SECONDS  ?= 30
fuzz: $(STAMP)
	KITPY_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -q -p no:cacheprovider tests/fuzz
	$(BIN)/pip install --quiet atheris
	for harness in fuzz/fuzz_*.py; do \
		$(BIN)/python $$harness -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 || exit 1; \
	done

# Soak the full stack (~80 s): every request accounted for, proxy RSS growth bounded;
# then SIGTERM one service under gRPC load (~5 s): every call answered or refused retryably.
soak: $(STAMP)
	$(BIN)/python -m tests.soak.driver $(ARGS)
	$(BIN)/python -m tests.soak.drain

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
