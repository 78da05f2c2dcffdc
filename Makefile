# Each target creates .venv on first use and installs rnnlab into it.
PY     := .venv/bin/python
STAMP  := .venv/.installed

.PHONY: demo test bench lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	.venv/bin/rnnlab demo

test: $(STAMP)
	$(PY) -m ruff check src tests benchmarks
	RNNLAB_REQUIRE_KERNELS=1 $(PY) -m pytest

bench: $(STAMP)
	$(PY) -m benchmarks.engine
	$(PY) -m benchmarks.online1997
	$(PY) -m benchmarks.charlm

lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks

clean:
	rm -rf .venv build src/*.egg-info .pytest_cache .ruff_cache
