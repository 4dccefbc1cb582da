# `make demo` and `make test` set everything up on a fresh machine: `make test` the full
# .venv (TensorFlow, JAX, PyTorch, KerasHub), `make demo` a small .venv-demo holding only what
# the static scan needs (nandoctor with numpy, h5py, rich and click: `pip install .`).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_VENV := .venv-demo
DEMO_STAMP := $(DEMO_VENV)/.installed

.PHONY: demo test lint docs fixtures zoo bench examples clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,jax,torch]'
	touch $(STAMP)

# Editable, so that the demo scans with the checkout's code; the stamp makes a second run instant.
# The venv ignores itself in git, as Python 3.13's venv does.
$(DEMO_STAMP): pyproject.toml
	$(PYTHON) -m venv $(DEMO_VENV)
	echo '*' > $(DEMO_VENV)/.gitignore
	$(DEMO_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -e .
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(DEMO_VENV)/bin/nandoctor scan fixtures --exit-zero

# The project's own checks, configured in pyproject.toml: the linter, the formatter, the types.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The backend is fixed when Keras is imported: the backend-neutral tests run again, under JAX
# and under PyTorch, each in a process of its own.
test: lint
	$(BIN)/nandoctor scan fixtures/clean --fail-on warning --quiet
	$(BIN)/python -m pytest tests -n 2 --nandoctor fixtures/clean
	KERAS_BACKEND=jax $(BIN)/python -m pytest tests -n 2 -m every_backend
	KERAS_BACKEND=torch $(BIN)/python -m pytest tests -n 2 -m every_backend

docs: $(STAMP)
	$(BIN)/python -m nandoctor.docgen

fixtures: $(STAMP)
	$(BIN)/python fixtures/build.py

# The public architectures of fixtures/zoo, saved into .cache/zoo (the tests build it there themselves).
zoo: $(STAMP)
	$(BIN)/python fixtures/zoo/build.py .cache/zoo/manual

# The benchmarks' baselines (the `bench` extra), installed once beside the test dependencies.
BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,jax,torch,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python bench/scan_speed.py
	$(BIN)/python bench/check_speed.py
	$(BIN)/python bench/word2vec_speed.py
	$(BIN)/python bench/formats_speed.py
	$(BIN)/python fixtures/zoo/build.py .cache/zoo/bench
	$(BIN)/python bench/judgement.py .cache/zoo/bench

# The five field reports, full runs, then docs/examples.md (README.md gives the measured time).
EXAMPLE_RUNS := a_memory.broken a_memory.fixed b_tied.broken b_tied.fixed c_cosine.broken c_cosine.fixed \
	d_padding.broken d_padding.fixed e_characters.broken e_characters.fixed
examples: $(STAMP)
	for run in $(EXAMPLE_RUNS); do $(BIN)/python -m examples.$$run || exit 1; done
	$(BIN)/python -m examples.a_memory.broken --learning-rate 0.5
	$(BIN)/python -m examples.a_memory.fixed --learning-rate 0.5
	$(BIN)/python -m examples.summary

clean:
	rm -rf $(VENV) $(DEMO_VENV) build *.egg-info .pytest_cache .hypothesis bench/.cache .cache
