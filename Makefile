# `make demo` and `make test` set everything up on a fresh machine (a .venv here).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test docs fixtures bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/nandoctor scan fixtures --exit-zero

test: $(STAMP)
	$(BIN)/nandoctor scan fixtures/clean --fail-on warning --quiet
	$(BIN)/python -m pytest tests --nandoctor fixtures/clean

docs: $(STAMP)
	$(BIN)/python -m nandoctor.docgen

fixtures: $(STAMP)
	$(BIN)/python fixtures/build.py

bench: $(STAMP)
	$(BIN)/python bench/scan_speed.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis bench/.cache
