# Development entry points. Each target sets up .venv first (once, and again when the requirements change).
#   make demo       - the main job: index the bundled sample videos with the bundled tiny GVE, answer text, image,
#                     video and composed queries; prints ranked tables and writes build/video-search/results.html
#                     (options: make demo ARGS="--help"; a real model: ARGS="--model Alibaba-NLP/GVE-3B")
#   make space      - the video search app (space/app.py, also a Hugging Face Space) on http://127.0.0.1:7860
#   make test       - lint, format check and the whole test suite (what CI runs)
#   make test-fast  - the suite without the slow and Ray tests (about a minute): the local loop while editing
#   make system     - the system packages some parts need, from Debian (root): FFmpeg's shared libraries (torchcodec
#                     decodes with them) and Chromium with its driver (the Space's browser test); CI runs it first
#   make generate   - rewrite every derived file (README.md, the bundled model's card and code links, the
#                     sentence-transformers configs, the embedding chat template); a test fails while one is stale

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup system demo space test test-fast lint generate

setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "pip==26.3"
	$(PY) -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	touch $(STAMP)

SYSTEM_PACKAGES := ffmpeg chromium chromium-driver

system:
	apt-get install -y -q $(SYSTEM_PACKAGES) || (apt-get update -q && apt-get install -y -q $(SYSTEM_PACKAGES))

demo: $(STAMP)
	$(PY) scripts/video_search.py $(ARGS)

space: $(STAMP)
	$(PY) space/app.py $(ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: lint
	$(PY) -m pytest $(ARGS)

test-fast: lint
	$(PY) -m pytest -m "not slow and not ray" $(ARGS)

generate: $(STAMP)
	$(PY) -m gve_tools.generate
