# Two entry points for a fresh machine: `make test` and `make demo` (see README.md).
# Both create the project's virtual environment on their own and are idempotent.
# TORCH_SPEC picks the torch build: the default is the CPU wheel of this project's machines;
# on a CUDA machine use e.g. `make test TORCH_SPEC="torch==2.13.0 --index-url <your CUDA index>"`.
PY ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=
# `make demo` / `make demo-photos` write here (git-ignored); DEMO_ARGS / PHOTOS_ARGS pass options,
# e.g. `make demo DEMO_ARGS="--size 128 --samples 8"`.
DEMO_OUT ?= demo-output
DEMO_ARGS ?=
PHOTOS_ARGS ?=
# `make screenshot` rewrites docs/images/extension-heldout.png (demo/screenshot.py); SHOT_ARGS
# pass options, e.g. `make screenshot SHOT_ARGS="--size 128 --threads 1"`.
SHOT_ARGS ?=

STAMP := $(VENV)/.resplat-installed
# Third-party splat tools the format tests check our files against (tests/test_formats_third_party.py):
# PlayCanvas splat-transform and the Khronos glTF validator, pinned, from the npm registry.
NPM_DIR ?= .cache/npm
NPM_TOOLS := @playcanvas/splat-transform@3.7.0 gltf-validator@2.0.0-dev.3.10
NPM_STAMP := $(NPM_DIR)/.installed-splat-transform-3.7.0-gltf-validator-2.0.0-dev.3.10
# PyPI bpy (Blender as a module, cp311 only, ~374 MB) for the headless extension tests.
BPY_STAMP := $(VENV)/.bpy-installed

.PHONY: setup fixtures third-party test bench demo demo-photos screenshot clean

setup: $(STAMP) $(BPY_STAMP)

$(STAMP): runtime/pyproject.toml
	test -x $(VENV)/bin/python || $(PY) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q $(TORCH_SPEC)
	$(VENV)/bin/python -m pip install -q -e "runtime[test]" "numpy<2"
	touch $@

$(BPY_STAMP): $(STAMP)
	$(VENV)/bin/python -m pip install -q "bpy==5.0.1" "numpy<2"
	touch $@

fixtures:
	bash scripts/fetch-fixtures

# Idempotent: installs once per pinned version set. Without npm the tests that need these tools
# are skipped with a reason (they also skip when node is missing); CI machines have both.
third-party: $(NPM_STAMP)

$(NPM_STAMP):
	@if command -v npm >/dev/null 2>&1; then \
	  npm install --prefix $(NPM_DIR) --no-audit --no-fund --loglevel=error $(NPM_TOOLS) && touch $@; \
	else \
	  echo "npm not found: the third-party format checks will be skipped"; \
	fi

test: setup fixtures third-party
	$(VENV)/bin/python -m pytest -q $(PYTEST_ARGS) tests

bench: setup fixtures
	PY=$(VENV)/bin/python bash benchmarks/run

# The spider asset rendered in headless Blender, reconstructed by the extension (demo/run_demo.py).
demo: setup fixtures
	$(VENV)/bin/python demo/run_demo.py --out $(DEMO_OUT) $(DEMO_ARGS)

# OpenCV's calibration photographs fitted, scored and exported as PLY / SPZ (demo/photos.py).
demo-photos: setup fixtures
	$(VENV)/bin/python demo/photos.py --out $(DEMO_OUT) $(PHOTOS_ARGS)

# The extension's result from held-out cameras beside their ground truth, as the artist sees it
# (demo/screenshot.py: Reconstruct with cameras marked Held Out, the Quality readout, the display).
screenshot: setup fixtures
	$(VENV)/bin/python demo/screenshot.py --png docs/images/extension-heldout.png $(SHOT_ARGS)

clean:
	rm -rf $(VENV) .cache $(DEMO_OUT)
