# failure-mode-lab. A fresh machine needs only python3 and make: `sync` installs uv.
#   make demo            FM_001 breaks, then holds under the fix
#   make test            ruff + every test, on all cores
#   make test-fm1        the repro of FM_001 (shows the break)
#   make test-fm1-fix    the prevent tests of FM_001 (prove the fix)
#   make new-fm NAME=x   scaffold the next failure mode
#   make index           regenerate docs/failure_mode_index.md
#   make check-index     measure every row again and fail if the index is stale (CI runs it)
#   make gate            every FM's guarded world held for seeds 500-999 (CI runs it)
#   make explore FM=1 SEEDS=100000 [POLICY=guarded] [SCHEDULER=pct]   search seeds, shrink
#   make replay FM=1 SEED=17 (or TAPE=file)   replay one explored run, byte for byte
#   make bench [JOBS=2000]   the runtime beside huey, persist-queue, litequeue, bare sqlite3;
#                        and beside procrastinate on PostgreSQL (starts make pg-up's server)
#   make bench-sim       the simulator's speed, beside raw SQLite and Hypothesis
#   make bench-tickets   the tickets service's lag and throughput over real HTTP
#   make torture [TRIALS=20] [WITHOUT=lever] [DB=postgresql] [BATCH=8]   SIGKILL real workers
#   make pg-up / pg-down   a throwaway PostgreSQL on loopback; make test then runs both backends
#   make serve [DB=lab.db] [PORT=8000]   the tickets API, with its projector
#   make fuzz-api [EXAMPLES=50] [SEED=1]   schemathesis against a started tickets API

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)
RUN := $(UV) run --locked --quiet
PYTEST := $(RUN) pytest -q

NPROC := $(shell nproc 2>/dev/null || echo 1)
# The server `make pg-up` started, if any: tests that need PostgreSQL run against it (and
# are skipped without it, except under CI, where they fail).
export FMLAB_PG_URL ?= $(shell cat .pg/url 2>/dev/null)
WORLD = --policy $(or $(POLICY),baseline) --scheduler $(or $(SCHEDULER),random) \
  $(if $(JOBS),--jobs $(JOBS)) $(if $(WORKERS),--workers $(WORKERS))

.PHONY: bench pg-up pg-down help sync test lint fmt demo new-fm index check-index gate explore replay bench-sim serve \
  fuzz-api bench-tickets torture

help:
	@sed -n 's/^#   //p' Makefile

sync:
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@$(UV) sync --locked --quiet

test: sync
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(PYTEST) -n auto -m "not campaign"

gate: sync
	$(PYTEST) -n auto -m campaign

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

# The peers live in their own dependency group, never the runtime's.
bench: sync
	@$(UV) sync --locked --quiet --group bench
	@tools/pg.sh up > /dev/null
	FMLAB_PG_URL=$$(tools/pg.sh url) $(UV) run --locked --quiet --group bench \
	  python -m bench.queues --jobs $(or $(JOBS),2000)

bench-sim: sync
	$(RUN) python -m bench.sim

torture: sync
	$(RUN) python -m torture.run --trials $(or $(TRIALS),20) $(if $(WITHOUT),--without $(WITHOUT)) \
	  --db $(or $(DB),sqlite) --batch $(or $(BATCH),1)

pg-up:
	@tools/pg.sh up

pg-down:
	@tools/pg.sh down

bench-tickets: sync
	$(RUN) python -m bench.tickets

serve: sync
	$(RUN) fmlab serve --db $(or $(DB),lab.db) --port $(or $(PORT),8000)

# A fresh database, a real server on a free loopback port, schemathesis over its OpenAPI
# schema (every check: no 5xx, responses as documented); then the projector runs until
# quiet and every invariant is checked over what the fuzzing left behind.
fuzz-api: sync
	@$(UV) sync --locked --quiet --group fuzz
	@dir=$$(mktemp -d); trap 'kill $$server 2>/dev/null || true; rm -rf "$$dir"' EXIT; \
	  $(RUN) fmlab serve --db "$$dir/fuzz.db" --port 0 > "$$dir/address" & server=$$!; \
	  for _ in $$(seq 100); do [ -s "$$dir/address" ] && break; sleep 0.1; done; \
	  url=$$(awk '{print $$NF}' "$$dir/address"); test -n "$$url"; \
	  $(UV) run --locked --quiet --group fuzz schemathesis run "$$url/openapi.json" \
	    --checks all --max-examples $(or $(EXAMPLES),50) --seed $(or $(SEED),1) --no-color; \
	  kill -TERM $$server; wait $$server; \
	  $(RUN) fmlab project --db "$$dir/fuzz.db" --until-quiet > /dev/null; \
	  $(RUN) fmlab check --db "$$dir/fuzz.db" --final

# make test-fmN / test-fmN-fix for every failure mode number N. GNU make picks the rule with
# the shorter stem, so test-fm1-fix goes to the -fix rule.
fm_dir = $(firstword $(wildcard failure_modes/FM_$(shell printf '%03d' '$(1)' 2>/dev/null)_*/))

test-fm%-fix: sync
	@dir="$(call fm_dir,$*)"; test -n "$$dir" || { echo "no failure mode numbered $*" >&2; exit 2; }; \
	  $(PYTEST) "$$dir"tests/test_prevent_*.py

test-fm%: sync
	@dir="$(call fm_dir,$*)"; test -n "$$dir" || { echo "no failure mode numbered $*" >&2; exit 2; }; \
	  $(PYTEST) "$$dir"tests/test_repro_*.py
