# `make demo` and `make test` share one virtual environment in .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# MetaWorld 3.1.1 pins mujoco 3.3.0; the project runs on mujoco 4, so MetaWorld gets an environment of its own.
MW_VENV := .venv-metaworld
MW_STAMP := $(MW_VENV)/.installed
# Without a GPU, install the CPU build of torch first so the package's torch range needs nothing more
# (a bare `torch` requirement resolves to a multi-GB CUDA build). Override with `make TORCH=...`.
TORCH ?= torch==2.13.0
DEMO_DIR ?= runs/demo

.PHONY: demo demo-zoo test bench docs clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	command -v nvidia-smi >/dev/null 2>&1 || $(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

$(MW_STAMP): pyproject.toml
	test -x $(MW_VENV)/bin/python || $(PYTHON) -m venv $(MW_VENV)
	$(MW_VENV)/bin/python -m pip install -q --upgrade pip
	command -v nvidia-smi >/dev/null 2>&1 || $(MW_VENV)/bin/python -m pip install -q "$(TORCH)"
	$(MW_VENV)/bin/python -m pip install -q -e ".[metaworld]"
	touch $(MW_STAMP)

demo: $(STAMP)
	$(BIN)/adaptstep train adaptstep/ThreeBody-v0 --algo ppo --config agents/demo.yml --seed 0 --out $(DEMO_DIR) --overwrite
	$(BIN)/adaptstep evaluate adaptstep/ThreeBody-v0 --controller $(DEMO_DIR)/model.zip --baselines \
		--episodes 20 --seed 1000 --out $(DEMO_DIR)/eval.csv --plot $(DEMO_DIR)/pareto.png

# A shipped agent (no training) against the env's baselines on 10 held-out seeds.
demo-zoo: $(STAMP)
	$(BIN)/adaptstep zoo list
	$(BIN)/adaptstep evaluate adaptstep/ThreeBody-v0 --controller zoo:threebody-ppo --baselines --episodes 10 \
		--seed 1000 --no-progress --out $(DEMO_DIR)/zoo-eval.csv --plot $(DEMO_DIR)/zoo-pareto.png

test: $(STAMP) $(MW_STAMP)
	$(BIN)/python -m pytest -q
	$(MW_VENV)/bin/python -m pytest -q tests/policies/test_metaworld.py

bench: $(STAMP)
	$(BIN)/adaptstep bench threebody

docs: $(STAMP)
	$(BIN)/mkdocs build --strict -d build/site

clean-venv:
	rm -rf $(VENV) $(MW_VENV)
