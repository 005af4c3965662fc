# The two commands of the README: `make up` and `make test`. Each creates the virtualenv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: up down management test lint unit bench

SHIPYARD_HOME ?= $(HOME)/.shipyard
DEMO := $(SHIPYARD_HOME)/clusters/demo

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# The main job: a self-managed Kubernetes cluster "demo" on process machines (bootstrap,
# create, pivot), or, when it exists already, how to reach it.
up: $(BIN)/.installed
	@if [ -f "$(DEMO)/kubeconfig" ]; then \
	  echo "Cluster demo exists. Use it with:"; \
	  echo "  export KUBECONFIG=$(DEMO)/kubeconfig"; echo "  kubectl get nodes"; \
	else SHIPYARD_HOME=$(SHIPYARD_HOME) $(BIN)/shipyard create cluster demo; fi

down: $(BIN)/.installed
	SHIPYARD_HOME=$(SHIPYARD_HOME) $(BIN)/shipyard delete cluster demo --kubeconfig $(DEMO)/kubeconfig

# The embedded management plane on its own (for `shipyard init` and your own manifests).
management: $(BIN)/.installed
	$(BIN)/shipyard management up

lint: $(BIN)/.installed
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

# The whole suite, then the API suites once more with the session server on etcd: the same
# API behaviour must hold on both storage backends.
test: lint
	$(BIN)/pytest $(PYTEST_ARGS)
	SHIPYARD_TEST_STORAGE=etcd $(BIN)/pytest -q tests/integration tests/client tests/apiserver

bench: $(BIN)/.installed
	$(BIN)/python -m benchmarks.run
