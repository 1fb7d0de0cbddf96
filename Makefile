# Two commands for a fresh machine (see README.md): `make book` and `make test`.
# Both set up everything they need: a virtual environment with the pinned packages, the
# project itself (editable), and Debian's Fashion-MNIST package where apt and root are available.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt pyproject.toml | sha1sum | cut -c1-12)
FMNIST := /usr/share/datasets/fashion-mnist
SMOKE  := _build/smoke

.PHONY: book test setup data-packages smoke-notebooks clean

setup: $(STAMP) data-packages

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
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

# Every notebook with papermill's `profile = "smoke"` injected (not run): nbval runs them.
smoke-notebooks: setup
	rm -rf $(SMOKE) && mkdir -p $(SMOKE)
	for nb in notebooks/*.ipynb; do \
	  $(BIN)/papermill --prepare-only -k python3 --cwd notebooks -p profile smoke "$$nb" "$(SMOKE)/$$(basename $$nb)" --log-level WARNING || exit 1; \
	done

test: setup smoke-notebooks
	$(BIN)/python -m pytest tests $(SMOKE) --nbval-lax -n 2 --dist loadfile -q --durations=15

book: setup
	$(BIN)/jupyter-book build . --warningiserror --keep-going
	@echo "The book is in _build/html/index.html"

clean:
	rm -rf _build
