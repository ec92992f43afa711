# Set-up and the two everyday jobs. `make demo` and `make test` each install what they need first.
# TORCH picks the torch build: the default is the CPU build that lies on this project's machines;
# on a CUDA machine use e.g. `make demo TORCH="torch --index-url https://download.pytorch.org/whl/cu124"`.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: demo test test-fast benchmark clean chromium

$(BIN)/anybody: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e ".[test]"
	# open_clip_torch carries the CLIP BPE file for the tiny models; --no-deps keeps torchvision out. Last, so
	# that no later install asks pip to check its (deliberately) missing dependencies.
	$(BIN)/python -m pip install --quiet --no-deps "open_clip_torch>=2.20"
	touch $@

demo: $(BIN)/anybody
	$(BIN)/anybody demo

test: $(BIN)/anybody chromium
	$(BIN)/ruff check anybody tests benchmarks
	$(BIN)/python -m pytest -q

# Everything but the tests marked `slow` (each over a few seconds): the quick check while working.
test-fast: $(BIN)/anybody
	$(BIN)/ruff check anybody tests benchmarks
	$(BIN)/python -m pytest -q -m "not slow"

# The web app's browser tests drive Debian's Chromium (Playwright's own browser download needs a CDN): installed
# with apt-get when missing (as root, or through sudo); where that fails, those tests say so and are skipped.
chromium:
	@test -x /usr/lib/chromium/chromium || command -v chromium >/dev/null || \
	  { command -v apt-get >/dev/null && \
	    { if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO="sudo -n"; fi; \
	      $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }; } || \
	  echo "NOTE: Chromium could not be installed; the browser tests of the web app will be skipped."

benchmark: $(BIN)/anybody
	$(BIN)/python benchmarks/training_step.py
	$(BIN)/python benchmarks/method_costs.py
	$(BIN)/python benchmarks/joint_learning.py
	$(BIN)/python benchmarks/several_photos.py
	$(BIN)/python benchmarks/loop_switches.py --rounds 3
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/control_costs.py
	$(BIN)/python benchmarks/growth.py --model tiny --resolutions 64 96 128 --steps 5 --out benchmarks/results/growth-tiny

clean:
	rm -rf $(VENV) anybody-output
