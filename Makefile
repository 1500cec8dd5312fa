# Set-up and entry points. `make repro` and `make test` are the two README commands.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# Stage commands call `python`: the venv must come first on PATH.
export PATH := $(abspath $(VENV))/bin:$(PATH)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export DVC_NO_ANALYTICS := 1
export MPLBACKEND := Agg
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# torch is installed first and alone: the CPU build from PyTorch's CPU wheel index on a
# machine without an NVIDIA GPU, PyPI's CUDA build on one with a GPU. Override with
# `make venv TORCH_INDEX=<url>` (e.g. a CUDA 12.6 index), or TORCH_INDEX= for plain PyPI.
TORCH_VERSION := 2.13.0
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu
HAVE_NVIDIA_GPU := $(shell nvidia-smi -L >/dev/null 2>&1 && echo yes)
TORCH_INDEX ?= $(if $(HAVE_NVIDIA_GPU),,$(TORCH_CPU_INDEX))
# A CPU torch needs nothing beyond what requirements.lock pins (installed next), so it
# goes in with --no-deps; a CUDA torch brings its nvidia-* libraries as dependencies.
TORCH_PIP_ARGS ?= $(if $(HAVE_NVIDIA_GPU),,--no-deps) $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX))
# Where `make lock` resolves torch's own dependencies from (a CPU wheel: no CUDA packages).
LOCK_TORCH_SOURCE ?= --extra-index-url $(TORCH_CPU_INDEX) --index-strategy unsafe-best-match
# moshi (Mimi) and msclap (HTSAT) declare pins that cannot co-install with torch>=2.10,
# transformers 5 and numpy 2 (moshi: torch<2.10, huggingface-hub<1; msclap: numpy<2,
# transformers<5, torchaudio); both work with this stack and install with --no-deps. Their
# real runtime needs are in pyproject's `phase0` / `reason` extras, so requirements.lock pins them.
NO_DEPS := moshi==0.2.13 msclap==1.3.4

.PHONY: venv repro test lock pip-check clean-venv

# The venv stamp depends on the lock: editing it reinstalls.
$(VENV)/.installed: requirements.lock pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --retries 2 $(TORCH_PIP_ARGS) torch==$(TORCH_VERSION)
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps $(NO_DEPS)
	$(BIN)/pip install -q --no-deps -e .
	@$(BIN)/python -c "import torch; print(f'torch {torch.__version__}:', 'CUDA ' + torch.version.cuda if torch.version.cuda else 'CPU build', '| GPU visible:', torch.cuda.is_available())"
	touch $@

venv: $(VENV)/.installed

# `pip check` must be clean apart from the two --no-deps packages above.
pip-check: venv
	@$(BIN)/pip check | grep -vE '^(moshi|msclap) ' || true
	@! $(BIN)/pip check | grep -vE '^(moshi|msclap) ' | grep -q .

repro: venv
	$(BIN)/dvc repro

test: venv
	$(BIN)/python -m pytest -q -p no:cacheprovider

# Regenerate requirements.lock from pyproject.toml (every extra, dev tools included).
lock: venv
	$(BIN)/uv pip compile pyproject.toml --all-extras --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 --no-emit-package torch $(LOCK_TORCH_SOURCE) \
	  --custom-compile-command "make lock" -o requirements.lock

clean-venv:
	rm -rf $(VENV)
