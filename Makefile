# The two commands a new user runs: `make demo` and `make test` (see README).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
OUT    ?= demo-out

.PHONY: demo stack-demo test lint typecheck pytest system-deps clean \
        bench-engine bench-replay bench-outbox bench-ingest bench-soak bench-web

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Reinstall only when the dependency pins change.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[agent,web]'
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[agent,web,test]'
	touch $@ $(VENV)/.installed

## demo: a simulated shop day through replay -> engine -> ledger -> export (no servers, no root)
demo: $(VENV)/.installed
	$(BIN)/shopwatt demo --output $(OUT) --force  # a rerun replaces its own files

## stack-demo: mosquitto + influxd + the gateway + the virtual shop's day, then costs, series, dashboards
stack-demo: $(VENV)/.installed system-deps
	$(BIN)/python -m agent.stackdemo

system-deps:
	.ci/system-deps

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache  # the layer order (pyproject: [tool.importlinter])
	$(BIN)/python -m grafana --check

typecheck: $(VENV)/.installed-test firmware-deps
	$(BIN)/mypy
	$(BIN)/mypy --config-file firmware/mypy.ini

pytest: $(VENV)/.installed-test system-deps firmware-deps
	$(BIN)/pytest

## test: install what the tests need, then ruff, mypy and pytest
test: lint typecheck pytest

## bench-*: benchmarks (ratios against a floor measured in the same run; see README)
bench-engine bench-replay bench-web: $(VENV)/.installed
	$(BIN)/python bench/$(@:bench-%=%).py

bench-outbox bench-ingest bench-soak: $(VENV)/.installed-test system-deps
	$(BIN)/python bench/$(@:bench-%=%).py

clean:
	rm -rf $(VENV) $(OUT) .mypy_cache .ruff_cache .pytest_cache

# ---- firmware (ESP32 sensor; docs/firmware.md) --------------------------------------------
# `make test` runs the firmware's mypy (typecheck) and its tests (pytest). Versions pinned
# here and in test_fw_build.py.
FW_STUBS := micropython-esp32-stubs==1.29.0.post1
PORT     ?= /dev/ttyUSB0

.PHONY: firmware-deps firmware-check flash

# The MicroPython WebAssembly port for the tests (pinned by package-lock.json) and the
# ESP32 type stubs (kept out of the host's mypy run: they shadow CPython's time, asyncio).
firmware-deps: tests/firmware/mpy/node_modules/.installed typings/machine.pyi

tests/firmware/mpy/node_modules/.installed: tests/firmware/mpy/package-lock.json | system-deps
	cd tests/firmware/mpy && npm ci --no-audit --no-fund
	touch $@

typings/machine.pyi: | $(VENV)/.installed-test
	$(BIN)/pip install -q --target typings $(FW_STUBS)

## firmware-check: firmware mypy against the ESP32 stubs, then its tests (CPython + MicroPython)
firmware-check: firmware-deps system-deps
	$(BIN)/mypy --config-file firmware/mypy.ini
	$(BIN)/pytest tests/firmware

## flash: compile the firmware and copy it to the ESP32 on PORT (make flash PORT=/dev/ttyUSB0)
flash: $(VENV)/.installed-test
	$(BIN)/pip install -q "mpremote>=1.24,<2"
	firmware/flash.sh $(PORT)
