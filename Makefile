# The two commands of the README: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

# `make demo OUT=dir` puts every output of the demo under dir.
OUT ?= out

.PHONY: demo test install clean bench

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $@

install: $(VENV)/.installed

# The whole chain on the embedded default: a real English corpus -> a data-scaling sweep under early
# stopping (Ray Train + DeepSpeed, CPU) -> validated fits, the answer in words, and plots.
demo: $(VENV)/.installed
	$(VENV)/bin/scalelab corpus build configs/corpus/english.yaml --out $(OUT)/english
	$(VENV)/bin/scalelab sweep configs/sweep/demo.yaml --set corpus=$(OUT)/english --set output=$(OUT)/sweeps/demo
	$(VENV)/bin/scalelab report $(OUT)/sweeps/demo

test: $(VENV)/.installed
	$(PY) -m pytest -q

bench: $(VENV)/.installed
	$(PY) bench/pipeline.py
	$(PY) bench/train.py

clean:
	rm -rf out .pytest_cache
