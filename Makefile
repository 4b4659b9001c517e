# Two entry points: `make quickstart` (the main job) and `make test`. Each creates .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: quickstart test venv bench

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test]'
	touch $@

quickstart: venv
	$(BIN)/stylediscover sweep run sweeps/quickstart.yaml --set name=quickstart-$$(date +%Y%m%d-%H%M%S)

test: venv
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium) \
		|| echo "chromium could not be installed: the explorer's browser tests will be skipped"
	$(BIN)/python -m pytest

bench: venv
	$(BIN)/python evaluation/bench_generator.py
