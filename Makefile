# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
KAZOO_VERSION := 2.11.0   # kazoo's own test suite, from this sdist, in make conformance

.PHONY: run test conformance kazoo-suite record-zk proto jute completions clean

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/dcli shell --embedded

test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile --durations=25 --ignore=tests/conformance

# the same client sessions against a real ZooKeeper 3.8 (Debian's zookeeper package, with java)
# and against dcli, then kazoo's own test suite against dcli; docs/conformance.md. Every known
# difference is listed as XFAIL with its values. Fails if either part fails (the kazoo suite runs
# even when ZooKeeper is missing).
conformance: $(STAMP)
	@$(PY) -c "import kazoo" 2>/dev/null || $(PY) -m pip install -q 'kazoo>=2.10'
	@status=0; \
	$(PY) -c "import sys; from tests.conformance.reference_zk import missing; m = missing(); \
	  m and print('make conformance: ' + m + ' (Debian: apt-get install zookeeper default-jre-headless)'); \
	  sys.exit(1 if m else 0)" \
	  && $(PY) -m pytest -q -rxXfE -p no:cacheprovider --durations=5 tests/conformance || status=1; \
	$(PY) -m tests.conformance.kazoo_suite --kazoo-version $(KAZOO_VERSION) || status=1; \
	exit $$status

# kazoo's own tests (its sdist, KAZOO_VERSION) against one dcli server; needs PyPI once
# (cached in .cache/kazoo-suite). Exit 1 if a test in scope fails.
kazoo-suite: $(STAMP)
	@$(PY) -c "import kazoo" 2>/dev/null || $(PY) -m pip install -q 'kazoo>=2.10'
	$(PY) -m tests.conformance.kazoo_suite --kazoo-version $(KAZOO_VERSION)

# ZooKeeper 3.8's answers to the conformance scenarios, written again to tests/conformance/recorded/
# (committed; tests/integration/test_zk_recorded.py replays them against dcli in `make test`)
record-zk: $(STAMP)
	$(PY) -m tests.conformance.record

proto: $(STAMP) jute
	$(PY) scripts/gen_proto.py

jute: $(STAMP)
	$(PY) scripts/gen_jute.py

completions: $(STAMP)
	$(PY) scripts/gen_completions.py

clean:
	rm -rf $(VENV) build *.egg-info .cache
