# failure-mode-lab. A fresh machine needs only python3 and make: `sync` installs uv.
#   make demo            FM_001 breaks, then holds under the fix
#   make test            ruff + every test, on all cores
#   make test-fm1        the repro of FM_001 (shows the break)
#   make test-fm1-fix    the prevent tests of FM_001 (prove the fix)
#   make new-fm NAME=x   scaffold the next failure mode
#   make index           regenerate docs/failure_mode_index.md
#   make check-index     measure every row again and fail if the index is stale (CI runs it)
#   make explore FM=1 SEEDS=100000 [POLICY=guarded] [SCHEDULER=pct]   search seeds, shrink
#   make replay FM=1 SEED=17 (or TAPE=file)   replay one explored run, byte for byte
#   make bench-sim       the simulator's speed, beside raw SQLite and Hypothesis

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)
RUN := $(UV) run --locked --quiet
PYTEST := $(RUN) pytest -q

NPROC := $(shell nproc 2>/dev/null || echo 1)
WORLD = --policy $(or $(POLICY),baseline) --scheduler $(or $(SCHEDULER),random) \
  $(if $(JOBS),--jobs $(JOBS)) $(if $(WORKERS),--workers $(WORKERS))

.PHONY: help sync test lint fmt demo new-fm index check-index explore replay bench-sim

help:
	@sed -n 's/^#   //p' Makefile

sync:
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@$(UV) sync --locked --quiet

test: sync
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(PYTEST) -n auto

lint: sync
	$(RUN) ruff check .
	$(RUN) ruff format --check .

fmt: sync
	$(RUN) ruff check --fix .
	$(RUN) ruff format .

demo: sync
	@echo "== FM_001 with GUARDED minus the commit boundary: the break (expect exit 1)"
	@status=0; $(RUN) fmlab run FM_001 --policy baseline || status=$$?; \
	  if [ $$status -ne 1 ]; then echo "demo: the baseline did not break (exit $$status)"; exit 1; fi
	@echo
	@echo "== FM_001 under GUARDED: the fix (expect exit 0)"
	@$(RUN) fmlab run FM_001 --policy guarded

new-fm: sync
	@test -n "$(NAME)" || { echo "usage: make new-fm NAME=short_snake_case_name" >&2; exit 2; }
	$(RUN) python -m failure_modes.scaffold "$(NAME)"

index: sync
	$(RUN) python -m failure_modes.index

check-index: sync
	$(RUN) python -m failure_modes.index --check

explore: sync
	@test -n "$(FM)" || { echo "usage: make explore FM=1 [SEEDS=n] [POLICY=baseline|guarded]" >&2; exit 2; }
	$(RUN) fmlab explore $(FM) --seeds $(or $(SEEDS),10000) --processes $(or $(PROCESSES),$(NPROC)) $(WORLD)

replay: sync
	@test -n "$(FM)" -a -n "$(SEED)$(TAPE)" || { echo "usage: make replay FM=1 SEED=n (or TAPE=file)" >&2; exit 2; }
	$(RUN) fmlab replay $(FM) $(if $(TAPE),--tape $(TAPE),--seed $(SEED) $(WORLD))

bench-sim: sync
	$(RUN) python -m bench.sim

# make test-fmN / test-fmN-fix for every failure mode number N. GNU make picks the rule with
# the shorter stem, so test-fm1-fix goes to the -fix rule.
fm_dir = $(firstword $(wildcard failure_modes/FM_$(shell printf '%03d' '$(1)' 2>/dev/null)_*/))

test-fm%-fix: sync
	@dir="$(call fm_dir,$*)"; test -n "$$dir" || { echo "no failure mode numbered $*" >&2; exit 2; }; \
	  $(PYTEST) "$$dir"tests/test_prevent_*.py

test-fm%: sync
	@dir="$(call fm_dir,$*)"; test -n "$$dir" || { echo "no failure mode numbered $*" >&2; exit 2; }; \
	  $(PYTEST) "$$dir"tests/test_repro_*.py
