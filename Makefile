# Development entry points. Each target sets up .venv first (once, and again when the requirements change).
#   make demo   - the main job: index the bundled sample videos with the bundled tiny GVE, answer text, image,
#                 video and composed queries; prints ranked tables and writes build/video-search/results.html
#                 (options: make demo ARGS="--help"; a real model: ARGS="--model Alibaba-NLP/GVE-3B")
#   make test   - lint, format check and the test suite (what CI runs)

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint

setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "pip==26.3"
	$(PY) -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	touch $(STAMP)

demo: $(STAMP)
	$(PY) scripts/video_search.py $(ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: lint
	$(PY) -m pytest $(ARGS)
