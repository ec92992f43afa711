# Set-up and the two everyday jobs. `make demo` and `make test` each install what they need first.
# TORCH picks the torch build: the default is the CPU build that lies on this project's machines;
# on a CUDA machine use e.g. `make demo TORCH="torch --index-url https://download.pytorch.org/whl/cu124"`.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: demo test benchmark clean

$(BIN)/anybody: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	# open_clip_torch carries the CLIP BPE file for the tiny models; --no-deps keeps torchvision out.
	$(BIN)/python -m pip install --quiet --no-deps "open_clip_torch>=2.20"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

demo: $(BIN)/anybody
	$(BIN)/anybody demo

test: $(BIN)/anybody
	$(BIN)/ruff check anybody tests benchmarks
	$(BIN)/python -m pytest -q

benchmark: $(BIN)/anybody
	$(BIN)/python benchmarks/training_step.py
	$(BIN)/python benchmarks/method_costs.py
	$(BIN)/python benchmarks/joint_learning.py

clean:
	rm -rf $(VENV) anybody-output
