# make demo: a video from a prompt on a fresh machine. make test: the whole test suite.
# Both create .venv and install everything first (the pinned torch before the rest, so pip
# never pulls a multi-GB CUDA build on a CPU machine; on a GPU box: make TORCH=torch==2.13.0
# with a CUDA index, or install your torch into .venv first).

PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
VIDGEN_HOME ?= $(CURDIR)/.vidgen
PORT ?= 3000
DEMO_PROMPT ?= A red fox trots through fresh snow at dawn. It stops and looks straight at the camera. The camera zooms out over the silent forest.
export VIDGEN_HOME

BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test ui lint clean bench lock

install: $(STAMP)

# constraints.txt holds the exact versions resolved last (make lock): with it a fresh install
# takes no resolver backtracking (minutes through boto3 / aiobotocore releases without it).
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "$(TORCH)"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[test]"
	touch $@

# Re-resolve pyproject.toml's dependencies in a scratch venv and write what it got.
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --disable-pip-version-check "$(TORCH)"
	.venv-lock/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test,deploy,s3]"
	{ sed -n '/^#/p' constraints.txt; .venv-lock/bin/python -m pip freeze --exclude-editable \
		| grep -v '^torch=='; } > constraints.txt.new && mv constraints.txt.new constraints.txt
	rm -rf .venv-lock

demo: $(STAMP)
	$(BIN)/vidgen generate "$(DEMO_PROMPT)" --duration 8 --seed 7

# One worker per core (pytest-xdist); the two modules that share one `dagster dev` run on one
# worker (conftest's scheduler). PYTEST_WORKERS=0 runs in one process.
PYTEST_WORKERS ?= auto
test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS)

# A bad VIDGEN_DATABASE_URL or unreachable VIDGEN_STORAGE stops here with one line.
ui: $(STAMP)
	home=$$($(BIN)/python -m vidgen_pipeline.instance) && \
		DAGSTER_HOME=$$home/dagster $(BIN)/dagster dev -h 127.0.0.1 -p $(PORT) -w workspace.yaml

# make bench: the CPU section, then the GPU one (with --tiny on the CPU when there is no CUDA
# GPU); writes docs/benchmarks.md (its own sections only) and VIDGEN_HOME/bench/benchmarks.json.
bench: $(STAMP)
	$(BIN)/python -m vidgen_pipeline.bench --section all

lint: $(STAMP)
	$(BIN)/ruff check vidgen_pipeline vidgen_pipeline_tests
	$(BIN)/ruff format --check vidgen_pipeline vidgen_pipeline_tests

clean:
	rm -rf $(VENV) .pytest_cache
