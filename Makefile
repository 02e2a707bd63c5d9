# Two commands: `make serve` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PACKAGES := layer1_sockets layer2_prefork layer3_http
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: serve test setup lint typecheck imports pytest docs clean

serve: setup docs
	@echo "serving the tutorial on http://$(HOST):$(PORT)/ (Ctrl-C stops)"
	$(BIN)/python -m http.server --bind $(HOST) --directory site $(PORT)

test: setup lint typecheck imports pytest docs

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,docs]'
	touch $(STAMP)

lint:
	$(BIN)/ruff check .

typecheck:
	$(BIN)/mypy --strict $(PACKAGES)

imports:
	$(BIN)/lint-imports

pytest:
	$(BIN)/python -m pytest -m "not nightly" $(PYTEST_ARGS)

docs:
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

clean:
	rm -rf $(VENV) site
