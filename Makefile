# peerlab: the two commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
PYTEST_WORKERS ?= 2

.PHONY: demo test test-netns test-docker test-under-load unit lint typecheck resilience chaos \
	stress mutants mutants-sim mutants-both sim-explore consensus connectivity dht-properties \
	coverage clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/peerlab demo

test: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy
	$(BIN)/pytest -n $(PYTEST_WORKERS) -m "not stress and not netns and not docker" --durations=15

# The docker backend (a running engine; the images are made here first and kept): its own
# tests, then syncpeer's basic and resilience suites and etcd's short consensus suite with
# every node in a container (the CLI-only tests of those folders run in `make test`).
DOCKER_SUITES = tests/e2e/basic/test_friend_sync.py tests/e2e/basic/test_discovery.py \
	tests/e2e/basic/test_etcd_manifest.py tests/e2e/resilience
test-docker: $(STAMP)
	$(BIN)/peerlab image build base syncpeer etcd
	$(BIN)/pytest -m docker --durations=10 tests/integration/test_docker_backend.py
	$(BIN)/pytest --peerlab-backend docker -m "not stress" -k "not from_the_cli" \
		--durations=15 $(DOCKER_SUITES)
	$(BIN)/pytest --peerlab-backend docker -m "consensus and not stress" --durations=15 \
		tests/e2e/consensus

# The backend-neutral suites again with every node in a network namespace of its own, and the
# netns backend's own scenarios (cleanup after SIGKILL, capabilities, rootless, the WireGuard
# mesh). Needs root, or unprivileged user namespaces (docs/backends.md).
NETNS_SUITES = tests/e2e/basic tests/e2e/resilience tests/e2e/chaos tests/e2e/consensus \
	tests/e2e/connectivity tests/e2e/netns tests/unit/backends
test-netns: $(STAMP)
	$(BIN)/pytest -n $(PYTEST_WORKERS) --peerlab-backend netns -m "not stress" --durations=15 \
		$(NETNS_SUITES)

# The same suite with 2 x cores busy processes in the background, as on a shared CI runner;
# they are killed afterwards, also when the suite fails (peerlab.bench.load).
LOAD ?= $(shell echo $$(( 2 * $$(nproc) )))
test-under-load: $(STAMP)
	$(BIN)/python -m peerlab.bench.load $(LOAD) -- $(MAKE) --no-print-directory test

# The fast suite: one process, no network, no nodes (under a minute on 2 workers).
unit: $(STAMP)
	$(BIN)/pytest -n $(PYTEST_WORKERS) -m "not stress" tests/unit --durations=10

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: $(STAMP)
	$(BIN)/mypy

resilience: $(STAMP)
	$(BIN)/pytest -m resilience

stress: $(STAMP)
	$(BIN)/pytest -m stress

# etcd (Raft) and Redis with Sentinel, short and full forms (the full ones are also `stress`).
consensus: $(STAMP)
	$(BIN)/pytest -m consensus --durations=15

connectivity: $(STAMP)
	$(BIN)/pytest -m connectivity --durations=15

# Every chaos scenario, and the 30 s randomized one once per seed (PEERLAB_CHAOS_SEEDS=20:
# seeds 1001..1020). A failure prints the line that replays it.
CHAOS_SEEDS ?= 20
chaos: $(STAMP)
	PEERLAB_CHAOS_SEEDS=$(CHAOS_SEEDS) $(BIN)/pytest -n $(PYTEST_WORKERS) -m chaos --durations=25

# The DHT's routing against a brute-force oracle on random networks of 200 to 2,000 nodes
# (virtual clock; minutes per network). DHT_EXAMPLES networks; a failure prints its seed.
DHT_EXAMPLES ?= 6
dht-properties: $(STAMP)
	PEERLAB_DHT_EXAMPLES=$(DHT_EXAMPLES) $(BIN)/pytest -m dht_properties --durations=10

# Each deliberate bug in syncpeer (syncpeer.core.mutants) against the scenarios that must
# catch it; prints mutant -> killing test, fails if one survives (tests/mutants/run.py).
mutants: $(STAMP)
	$(BIN)/python tests/mutants/run.py --jobs $(PYTEST_WORKERS)

# The same catalog on the simulator, and both side by side with their wall times.
mutants-sim: $(STAMP)
	$(BIN)/python tests/mutants/run.py --backends sim --jobs $(PYTEST_WORKERS)

mutants-both: $(STAMP)
	$(BIN)/python tests/mutants/run.py --backends local,sim --jobs $(PYTEST_WORKERS)

# Many seeds of the randomized chaos scenario on the simulator, in worker processes; each
# failing seed is listed with the line that replays it (SIM_SEEDS=200 by default).
SIM_SEEDS ?= 200
sim-explore: $(STAMP)
	$(BIN)/peerlab sim explore --scenario chaos --seeds $(SIM_SEEDS) --jobs $(PYTEST_WORKERS)
# The suite under coverage.py (xdist workers and node processes included: pyproject.toml's
# [tool.coverage.run]); then the change-impact map for `peerlab impacted`, and the gates:
# the project >= 80%, syncpeer's identity, envelope and keyring >= 90%; below -> exit 1.
# A failing test fails the target too, after the gates have been reported (reruns on).
coverage: $(STAMP)
	rm -f .coverage .coverage.*
	$(BIN)/coverage run -m pytest -n $(PYTEST_WORKERS) -m "not stress" -q --peerlab-reruns 2; \
	status=$$?; \
	$(BIN)/coverage combine -q && $(BIN)/peerlab impact-map && \
	$(BIN)/coverage report --skip-covered --sort=cover --fail-under=0 | tail -25 && \
	$(BIN)/peerlab coverage-gate && exit $$status

clean:
	rm -rf $(VENV) peerlab-results .mypy_cache .ruff_cache .pytest_cache .coverage .coverage.*
