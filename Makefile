# Set-up and entry points: `make repro`, `make test` (fast tier) and `make test-all` (what CI runs).
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
# Interpreters are looked up on the PATH make started with, less the venv (a sub-make inherits
# it first on PATH): the venv's own python3.x must never be the one that builds the venv.
SYS_PATH := $(subst $(abspath $(VENV))/bin:,,$(PATH))
# Python 3.11-3.13 are supported. 3.11 comes first: it is the reference platform whose
# committed outputs `dvc repro` reproduces byte for byte. A candidate counts only if it runs
# (a pyenv shim for a version not selected exists but fails). `make venv PY=python3.12` overrides.
PY_CANDIDATES := python3.11 python3.12 python3.13 python3
PY_VERSION_OK := import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))
PY_MINOR := import sys; print(*sys.version_info[:2], sep=".")
PY_INSTALL_HINT := install Python 3.11 (the reference platform; 3.12 or 3.13 also work) or name one with make venv PY=/path/to/python3.11
ifeq ($(origin PY),undefined)
PY := $(shell for p in $(PY_CANDIDATES); do PATH='$(SYS_PATH)' $$p -c '$(PY_VERSION_OK)' >/dev/null 2>&1 && { echo $$p; break; }; done)
endif
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
# It must serve torch for cp311, cp312 and cp313: PyTorch's CPU index does.
LOCK_TORCH_SOURCE ?= --extra-index-url $(TORCH_CPU_INDEX) --index-strategy unsafe-best-match
# Without a CPU wheel for this Python (index unreachable, no mirror) pip silently takes PyPI's
# CUDA build, and --no-deps leaves out the CUDA libraries it links (`import torch`: no
# libcudnn.so.9). So a --no-deps torch must load its native libraries before anything else is
# installed (`import torch` itself would need the lock's pure-Python packages); if not, the
# set-up stops with one line, removes that torch (a rerun must not find it "already
# satisfied") and leaves the stamp untouched, so the next `make` retries. A torch installed
# with its dependencies (GPU machines, TORCH_PIP_ARGS=) is checked by the import at the end.
TORCH_LOADS := import ctypes, glob, importlib.util as u; ctypes.CDLL(glob.glob(u.find_spec("torch").submodule_search_locations[0] + "/_C.*.so")[0])
TORCH_NO_DEPS_HINT := pip found no CPU build of torch $(TORCH_VERSION) for this Python $(if $(TORCH_INDEX),(is $(TORCH_INDEX) reachable?),on PyPI) and installed PyPI's CUDA build without its CUDA libraries; rerun make once $(or $(TORCH_INDEX),$(TORCH_CPU_INDEX)) is reachable, or make venv TORCH_INDEX=<a mirror of it>, or make venv TORCH_PIP_ARGS= for the CUDA build with its dependencies (several GB)
# moshi (Mimi) and msclap (HTSAT) declare pins that cannot co-install with torch>=2.10,
# transformers 5 and numpy 2 (moshi: torch<2.10, huggingface-hub<1; msclap: numpy<2,
# transformers<5, torchaudio); both work with this stack and install with --no-deps. Their
# real runtime needs are in pyproject's `phase0` / `reason` extras, so requirements.lock pins them.
NO_DEPS := moshi==0.2.13 msclap==1.3.4

.PHONY: venv repro test test-all lock pip-check clean-venv

# The venv stamp depends on the lock: editing it reinstalls. A venv of another Python (PY
# changed) is rebuilt from scratch, not patched over.
$(VENV)/.installed: requirements.lock pyproject.toml
	@[ -n "$(PY)" ] || { echo "No Python 3.11-3.13 found (tried $(PY_CANDIDATES)): $(PY_INSTALL_HINT)" >&2; exit 1; }
	@PATH='$(SYS_PATH)' $(PY) -c '$(PY_VERSION_OK)' >/dev/null 2>&1 || { echo "PY=$(PY) is not a working Python 3.11-3.13: $(PY_INSTALL_HINT)" >&2; exit 1; }
	@want=$$(PATH='$(SYS_PATH)' $(PY) -c '$(PY_MINOR)'); have=$$($(BIN)/python -c '$(PY_MINOR)' 2>/dev/null); \
	  echo "$(PY): Python $$want -> $(VENV)"; \
	  if [ "$$want" != "$$have" ]; then PATH='$(SYS_PATH)' $(PY) -m venv --clear $(VENV); fi
	$(BIN)/pip install -q --retries 2 $(TORCH_PIP_ARGS) torch==$(TORCH_VERSION)
	@$(if $(filter --no-deps,$(TORCH_PIP_ARGS)),if ! err=$$($(BIN)/python -c '$(TORCH_LOADS)' 2>&1); then \
	  $(BIN)/pip uninstall -q -y torch >/dev/null 2>&1; \
	  echo "torch $(TORCH_VERSION) does not load ($${err##*$$'\n'}): $(TORCH_NO_DEPS_HINT)" >&2; exit 1; fi,:)
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps $(NO_DEPS)
	$(BIN)/pip install -q --no-deps -e .
	@$(BIN)/python -c "import torch; print(f'torch {torch.__version__}:', 'CUDA ' + torch.version.cuda if torch.version.cuda else 'CPU build', '| GPU visible:', torch.cuda.is_available())"
	touch $@

venv: $(VENV)/.installed

# `make venv PY=python3.12` over a venv of another Python rebuilds it, fresh stamp or not.
ifeq ($(origin PY),command line)
ifneq ($(shell PATH='$(SYS_PATH)' $(PY) -c '$(PY_MINOR)' 2>/dev/null),$(shell $(BIN)/python -c '$(PY_MINOR)' 2>/dev/null))
$(VENV)/.installed: .FORCE
endif
endif
.PHONY: .FORCE
.FORCE:

# `pip check` must be clean apart from the two --no-deps packages above.
pip-check: venv
	@$(BIN)/pip check | grep -vE '^(moshi|msclap) ' || true
	@! $(BIN)/pip check | grep -vE '^(moshi|msclap) ' | grep -q .

repro: venv
	$(BIN)/dvc repro

# Two tiers. `make test`, for every change: unit tests and the small end-to-end tests (tests
# marked `slow` left out). `make test-all`, what CI runs: everything, including each lane's
# dvc end-to-end runs, the multi-process agreement tests and the fresh clone's cold `dvc repro`.
test: venv
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not slow"

test-all: venv
	$(BIN)/python -m pytest -q -p no:cacheprovider

# Regenerate requirements.lock from pyproject.toml (every extra, dev tools included): one
# universal lock for Python 3.11-3.13 on Linux x86_64 (pyproject's [tool.uv] environments);
# a line that holds for one Python only carries a marker, which pip evaluates.
lock: venv
	$(BIN)/uv pip compile pyproject.toml --all-extras --universal --python-version 3.11 \
	  --no-emit-package torch $(LOCK_TORCH_SOURCE) \
	  --custom-compile-command "make lock" -o requirements.lock

clean-venv:
	rm -rf $(VENV)
