# Each target creates .venv on first use and installs rnnlab into it.
PY     := .venv/bin/python
STAMP  := .venv/.installed

.PHONY: demo test bench lint clean browser docs tutorials

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install --quiet -e ".[dev,cluster,docs]"
	touch $(STAMP)

demo: $(STAMP)
	.venv/bin/rnnlab demo

test: $(STAMP) browser
	$(PY) -m ruff check src tests benchmarks
	RNNLAB_REQUIRE_KERNELS=1 RNNLAB_REQUIRE_BROWSER=1 $(PY) -m pytest

# the report tests render pages in a real headless browser: Debian's chromium
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { echo "installing chromium (Debian) for the report tests ..."; \
	    $$(command -v sudo) apt-get update -q >/dev/null && \
	    DEBIAN_FRONTEND=noninteractive $$(command -v sudo) apt-get install -y -q chromium \
	    >/dev/null; }

bench: $(STAMP)
	$(PY) -m benchmarks.engine
	$(PY) -m benchmarks.gemm
	$(PY) -m benchmarks.online1997
	$(PY) -m benchmarks.charlm
	$(PY) -m benchmarks.symbols
	$(PY) -m benchmarks.transforms
	$(PY) -m benchmarks.wishlist
	$(PY) -m benchmarks.scaling

# the documentation site: guides, results, the API reference from the docstrings (site/)
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --site-dir site
	@echo "open site/index.html"

# run the four tutorials top to bottom and save them with their outputs (what the site shows)
tutorials: $(STAMP)
	cd docs/tutorials && ../../.venv/bin/jupyter-execute --inplace --timeout=600 *.ipynb

lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks

clean:
	rm -rf .venv build site src/*.egg-info .pytest_cache .ruff_cache
