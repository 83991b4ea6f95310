VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: install test demo bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PIP) install -q -c constraints.txt torch==2.13.0 -e '.[dev]'
	touch $@

test: install
	$(VENV)/bin/pytest -q

demo: install
	$(VENV)/bin/shelfwise demo

bench: install
	$(PY) benchmarks/ingest_events.py

clean:
	rm -rf $(VENV) shelfwise-home
