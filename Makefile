# Two commands: `make serve` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PACKAGES := layer1_sockets layer2_prefork layer3_http
HOST ?= 127.0.0.1
PORT ?= 8000
SERVE_ARGS ?=

.PHONY: serve test setup bench bench-publish lint typecheck imports pytest docs api clean sessions

# The tutorial, built strictly, served by the server it teaches (layer 3's
# static-file callback on layer 2's pre-forked workers). Ctrl-C sends SIGINT,
# the master's fast stop: workers killed, the port closed, exit status 0.
# SERVE_ARGS passes more options, e.g. SERVE_ARGS="--max-fork 64 --idle-timeout 5".
# APP serves one of the tutorial's applications instead, reloaded whenever one of
# its files changes, e.g. make serve APP=docs/examples/layer3/step07_site.py.
APP ?=
ifeq ($(strip $(APP)),)
serve: setup docs
	@echo "serving the tutorial on http://$(HOST):$(PORT)/ (Ctrl-C stops)"
	$(BIN)/python -m layer3_http --static site --listen $(HOST):$(PORT) $(SERVE_ARGS)
else
serve: setup
	@echo "serving $(APP) on http://$(HOST):$(PORT)/, reloaded on each change (Ctrl-C stops)"
	$(BIN)/python -m layer3_http $(APP) --reload --listen $(HOST):$(PORT) $(SERVE_ARGS)
endif

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

# The site, strictly. The same build runs Sphinx on docs/api/ (sphinx-build -W
# --keep-going -n, from docs/api/hook.py): the API reference lands in site/api/.
docs:
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# The API reference alone, with the same options, into build/api/.
api: setup
	$(BIN)/python -m sphinx -W --keep-going -n -q -b html docs/api build/api

clean:
	rm -rf $(VENV) site

# Re-record every terminal session of the site (docs/sessions/) and the
# signatures it shows, after a change of behaviour; review the diff.
sessions: setup
	$(BIN)/python tools/sessions.py --update

# Benchmarks (standard library only; bench/run.py makes its own venv for the peers).
bench:  ## well over an hour with every peer and workload; BENCH_ARGS="--quick" for a short check
	$(PYTHON) bench/run.py $(BENCH_ARGS)

bench-publish:
	$(PYTHON) bench/run.py --commit HEAD --publish $(BENCH_ARGS)

# Teaching: a student hand-out without the solutions (a fresh Git repository with one
# commit), and grading a student's copy against the exercise tests and the hidden tests.
HANDOUT ?= ../$(notdir $(CURDIR))-handout
.PHONY: handout grade

handout: setup
	$(BIN)/python tools/handout.py $(HANDOUT)

grade: setup
	@test -n "$(STUDENT)" || { echo "usage: make grade STUDENT=path/to/the/student/copy"; exit 2; }
	$(BIN)/python tools/grade.py $(STUDENT)

# The diffs between step programs that the chapter pages show; tests/docs/test_diffs.py
# fails when a step program changed and its diff was not rewritten.
.PHONY: diffs
diffs:
	$(PYTHON) tools/diffs.py
