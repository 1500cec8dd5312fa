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

.PHONY: venv repro test clean-venv

# The venv stamp depends on the pin files: editing them reinstalls.
$(VENV)/.installed: requirements.txt constraints.txt pyproject.toml
	$(PY) -m venv $(VENV)
	# torch first, from its pin alone: nothing after it can swap in a CUDA build.
	$(BIN)/pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -r requirements.txt
	# moshi and msclap declare pins that cannot co-install with torch>=2.10,
	# transformers 5 and numpy 2; their real runtime needs are in requirements.txt.
	$(BIN)/pip install -q -c constraints.txt --no-deps moshi==0.2.13 msclap==1.3.4
	$(BIN)/pip install -q -c constraints.txt --no-deps -e .
	@$(BIN)/python -c "import torch, sys; sys.exit('CUDA torch installed on a CPU box' if torch.version.cuda and not torch.cuda.is_available() else 0)"
	touch $@

venv: $(VENV)/.installed

repro: venv
	$(BIN)/dvc repro

test: venv
	$(BIN)/python -m pytest -q -p no:cacheprovider

clean-venv:
	rm -rf $(VENV)
