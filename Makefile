# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test proto jute completions clean

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/dcli shell --embedded

test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile --durations=25

proto: $(STAMP) jute
	$(PY) scripts/gen_proto.py

jute: $(STAMP)
	$(PY) scripts/gen_jute.py

completions: $(STAMP)
	$(PY) scripts/gen_completions.py

clean:
	rm -rf $(VENV) build *.egg-info
