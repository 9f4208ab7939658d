# The two commands of the README: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test install clean bench

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $@

install: $(VENV)/.installed

# The whole chain on the embedded default: corpus -> sweep (Ray Train + DeepSpeed, CPU) -> fits and plots.
demo: $(VENV)/.installed
	$(VENV)/bin/scalelab corpus build configs/corpus/sample.yaml --out out/sample
	$(VENV)/bin/scalelab sweep configs/sweep/sample.yaml
	$(VENV)/bin/scalelab report out/sweeps/sample

test: $(VENV)/.installed
	$(PY) -m pytest -q

bench: $(VENV)/.installed
	$(PY) bench/pipeline.py
	$(PY) bench/train.py

clean:
	rm -rf out .pytest_cache
