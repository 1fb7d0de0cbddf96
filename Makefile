# Two commands for a fresh machine (see README.md): `make book` and `make test`.
# Both set up everything they need: a virtual environment with the pinned packages, the
# project itself (editable), and Debian's Fashion-MNIST package where apt and root are available;
# `make test` also installs Debian's chromium and chromium-driver for the browser test.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# the sanity-checks chapter's test oracle, installed without its opencv-python dependency
# (see requirements.txt)
QUANTUS := quantus==0.6.0
STAMP  := $(VENV)/.installed-$(shell echo $(QUANTUS) | cat requirements.txt pyproject.toml - | sha1sum | cut -c1-12)
FMNIST := /usr/share/datasets/fashion-mnist
SMOKE  := _build/smoke
SMOKE_BOOK := _build/smoke-book
WHEEL  := _build/wheel
# Two jobs at once on a 2-core machine (the smoke notebooks two at a time, pytest's two workers):
# one torch/OpenMP thread each. torch's default, one thread per core in every job, oversubscribes
# the cores and ran the CIFAR-10 test 274 s beside the other worker against 67 s with one thread.
ONE_THREAD := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
# a profile's claim records are rewritten by the run that renders it: drop the old ones first, so
# that a chapter renamed or removed leaves no row on the summary page
CLEAR_CLAIMS = $(BIN)/python -c "import shutil; from lib.report import claims_dir; shutil.rmtree(claims_dir('$(1)'), ignore_errors=True)"

.PHONY: book test lint setup data-packages browser wheel smoke-notebooks smoke-book clean

setup: $(STAMP) data-packages

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps $(QUANTUS)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-*
	touch $@

# Fashion-MNIST for the default profile: Debian's dataset-fashion-mnist, if apt and root are here.
data-packages:
	@if [ -d $(FMNIST) ]; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  echo "installing Debian's dataset-fashion-mnist"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; \
	else echo "note: no apt/root here: pass data_root= or see 'python -m lib.data summary'"; fi

# Headless Chromium and its driver for tests/test_book_browser.py: Debian's packages.
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  echo "installing Debian's chromium and chromium-driver (the browser test)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	else echo "note: no apt/root here: install chromium and chromium-driver for the browser test"; fi

# The library as a wheel, with its committed weights (lib/bundled), for readers on Colab; the book
# offers it for download from its _static/ folder (see the introduction). sdist first, then the
# wheel from the sdist: nothing is written into the checkout but the ignored *.egg-info.
wheel: setup
	rm -rf $(WHEEL) && mkdir -p _build
	$(BIN)/python -m build --no-isolation --outdir $(WHEEL) . > $(WHEEL).log 2>&1 || { cat $(WHEEL).log; exit 1; }

# Every notebook run once on the smoke profile with papermill, outputs kept: a failing cell stops
# here with its traceback. Chapters run two at a time; the summary page (90_) runs last, after every
# chapter has written its claims. The smoke book is rendered from these executed notebooks.
smoke-notebooks: setup
	rm -rf $(SMOKE) && mkdir -p $(SMOKE)
	$(call CLEAR_CLAIMS,smoke)
	ls notebooks/*.ipynb | grep -v '/9[0-9]_' | $(ONE_THREAD) xargs -P 2 -I{} sh -c \
	  '$(BIN)/papermill -k python3 --cwd notebooks -p profile smoke "{}" "$(SMOKE)/$$(basename {})" --log-level WARNING --no-progress-bar || { echo "FAILED: {} (smoke profile)"; exit 255; }'
	for nb in $$(ls notebooks/9[0-9]_*.ipynb 2>/dev/null); do \
	  $(BIN)/papermill -k python3 --cwd notebooks -p profile smoke "$$nb" "$(SMOKE)/$$(basename $$nb)" --log-level WARNING --no-progress-bar || exit 1; \
	done

# The book on the smoke profile, from the executed notebooks (not run a second time; only the
# introduction's small cell runs), with the wheel and the executed notebooks in _static/: what the
# browser test reads.
smoke-book: smoke-notebooks wheel
	$(BIN)/python book/_ext/stage_smoke_book.py $(SMOKE) $(SMOKE_BOOK)
	$(BIN)/jupyter-book build $(SMOKE_BOOK) --warningiserror --keep-going --quiet
	cp $(WHEEL)/*.whl $(SMOKE_BOOK)/_build/html/_static/
	$(BIN)/python book/_ext/executed_notebooks.py $(SMOKE) $(SMOKE_BOOK)/_build/html

# ruff over the library, the tests and the notebooks ([tool.ruff] in pyproject.toml): seconds, so
# that `make test` stops on a lint error before anything slow
lint: setup
	$(BIN)/ruff check lib tests notebooks
	$(BIN)/ruff format --check lib tests notebooks

test: setup lint browser smoke-book
	REQUIRE_BOOK=1 $(ONE_THREAD) $(BIN)/python -m pytest tests -n 2 --dist loadfile -q --durations=15

book: setup wheel
	$(call CLEAR_CLAIMS,default)
	$(BIN)/jupyter-book build . --warningiserror --keep-going
	cp $(WHEEL)/*.whl _build/html/_static/
	$(BIN)/python book/_ext/executed_notebooks.py _build/jupyter_execute/notebooks _build/html
	@echo "The book is in _build/html/index.html"

clean:
	rm -rf _build
