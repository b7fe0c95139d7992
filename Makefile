# Customer segmentation: raw export → dbt mart → K-Means segments → persona report.
# `make all` does everything, set-up included; `make test` runs the test suite.

.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

# ---- settings (override on the command line: make all DATA=my_export.csv K=5) ----
PYTHON      ?= python3
DEFAULT_DATA := data/raw/customers.csv
DEFAULT_ORDERS := data/raw/orders.csv
# ORDERS=order_lines.csv (alone or with DATA=): behaviour from order lines. The default run
# uses both generated tables; ORDERS= alone means no customer table, DATA= alone no orders.
ifeq ($(origin ORDERS),undefined)
ORDERS      := $(if $(filter undefined,$(origin DATA)),$(DEFAULT_ORDERS))
DATA        ?= $(DEFAULT_DATA)
else
DATA        ?=
endif
AS_OF       ?=
ROWS        ?= 10000
SEED        ?= 42
K           ?=
MAX_QUARANTINE_SHARE ?= 0.20
CSV_SEP     ?=
CSV_ENCODING ?=
DECLARATION ?=
FORCE       ?=
REPORT_LANG ?= en
WAREHOUSE   ?= data/warehouse.duckdb
MODELS_DIR  ?= data/models
OUTPUT_DIR  ?= reports/output
DBT_TARGET_PATH ?= $(CURDIR)/dbt_project/target
# duckdb (one machine, the default) or spark (dbt-spark and Spark MLlib; SPARK_REMOTE=sc://host:15002 for a cluster)
ENGINE      ?= duckdb
SPARK_REMOTE ?=

VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SYSTEM_STAMP := $(VENV)/.system-checked
SPARK_STAMP := $(VENV)/.installed-spark
SPARK := $(filter spark,$(ENGINE))

export PYTHONPATH := $(CURDIR)/python
# Steps build into a working copy; `publish` swaps it in only when all succeeded.
BUILD_WAREHOUSE := $(dir $(abspath $(WAREHOUSE))).build/$(notdir $(WAREHOUSE))
export SEGMENTATION_WAREHOUSE := $(BUILD_WAREHOUSE)
export SEGMENTATION_MODELS_DIR := $(abspath $(MODELS_DIR))
export SEGMENTATION_OUTPUT_DIR := $(abspath $(OUTPUT_DIR))
# `override`: a DBT_TARGET_PATH given on the command line is made absolute too (dbt would read a
# relative one from dbt_project/, Python from here)
override DBT_TARGET_PATH := $(abspath $(DBT_TARGET_PATH))
export DBT_TARGET_PATH
DBT_PARSED := $(DBT_TARGET_PATH)/partial_parse.msgpack
export DBT_LOG_PATH := $(abspath $(DBT_TARGET_PATH))/logs
export DBT_PROFILES_DIR := $(CURDIR)/dbt_project
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
# dbt.log at info (statuses, errors); the SQL that ran is in target/run and target/compiled
export DBT_LOG_LEVEL_FILE ?= info
ifneq ($(SPARK_REMOTE),)
export SPARK_REMOTE
endif
export K SEED REPORT_LANG MAX_QUARANTINE_SHARE CSV_SEP CSV_ENCODING DECLARATION
# the input's path goes to recipes as $$DATA (an environment variable), so that no character of a
# file name (quote, backtick, $$(…)) is ever read by the shell as part of a command
export DATA ORDERS AS_OF
INPUTS = $(if $(DATA),"$$DATA") $(if $(ORDERS),--orders "$$ORDERS")
DEFAULT_INPUTS = $(if $(filter $(DEFAULT_DATA),$(DATA)),$(DEFAULT_DATA)) $(if $(filter $(DEFAULT_ORDERS),$(ORDERS)),$(DEFAULT_ORDERS))

SEGMENTATION := $(BIN)/python -m segmentation
DBT := cd dbt_project && $(abspath $(BIN))/dbt
step = @printf '\n\033[1m==> %s\033[0m\n' "$(1)"

.PHONY: help all setup check-system check-java spark data init begin ingest mart quality segment profiles publish report score score-steps bench test lint clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@printf '\nVariables: DATA=%s ORDERS=%s AS_OF=%s K=%s SEED=%s REPORT_LANG=%s WAREHOUSE=%s MAX_QUARANTINE_SHARE=%s CSV_SEP=%s CSV_ENCODING=%s\n' \
	  "$$DATA" "$$ORDERS" '$(AS_OF)' '$(K)' '$(SEED)' '$(REPORT_LANG)' '$(WAREHOUSE)' '$(MAX_QUARANTINE_SHARE)' '$(CSV_SEP)' '$(CSV_ENCODING)'

all: $(if $(SPARK),setup,$(STAMP) $(SYSTEM_STAMP)) $(DEFAULT_INPUTS) ## set up, then build everything and write the PDF report, in one process and a warm worker (DATA=file.csv|.parquet, ORDERS=order_lines.csv, AS_OF=)
ifeq ($(SPARK),)
	@$(SEGMENTATION) run '$(WAREHOUSE)' $(INPUTS)
else
	@$(SEGMENTATION) exclusive '$(WAREHOUSE)' -- $(MAKE) --no-print-directory report
endif
	@printf '\n\033[1mReport: %s/segment_report.pdf\033[0m\n' '$(OUTPUT_DIR)'
	@printf 'Also: %s/segment_report.html (self-contained), %s/segment_assignments.csv (CRM export)\n' '$(OUTPUT_DIR)' '$(OUTPUT_DIR)'

setup: $(STAMP) $(SYSTEM_STAMP) $(DBT_PARSED) $(if $(SPARK),$(SPARK_STAMP) check-java) ## create .venv from the pinned requirements, check system libraries, parse the dbt project

$(STAMP): requirements.txt
	$(call step,Creating the virtual environment .venv from requirements.txt)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "error: Python >= 3.10 is needed (found " + sys.version.split()[0] + "); set PYTHON=python3.x")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --quiet -r requirements.txt
	@touch $@

# ENGINE=spark only: dbt-spark and PySpark (the first install builds PySpark's wheel, about 2 min)
$(SPARK_STAMP): requirements-spark.txt | $(STAMP)
	$(call step,Installing the Spark engine from requirements-spark.txt)
	$(BIN)/python -m pip install --quiet --quiet -r requirements-spark.txt
	@touch $@

check-java: $(STAMP) ## ENGINE=spark: check that Java 17 or newer is installed (unless SPARK_REMOTE names a cluster)
	@$(SEGMENTATION) check-java

check-system: $(STAMP) ## check that WeasyPrint finds the Pango library
	@$(BIN)/python -c 'import weasyprint' 2>/dev/null || { \
	  echo "error: WeasyPrint cannot load the Pango library. Install it, e.g. on Debian/Ubuntu:"; \
	  echo "  sudo apt-get install libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0"; exit 1; }

# dbt parses the whole project once (a second and a half); later invocations re-read only
# what changed (partial parsing), as long as the warehouse path is the same
$(DBT_PARSED): | $(STAMP)
	$(call step,dbt parse: checking the dbt project)
	$(SEGMENTATION) declare
	$(DBT) parse --quiet

# checked once per environment (importing WeasyPrint costs half a second); the report
# step repeats the check, with the same advice, if the library goes missing later
$(SYSTEM_STAMP): $(STAMP)
	@$(MAKE) --no-print-directory check-system
	@touch $@

data: $(DEFAULT_DATA) ## generate the default sample data (ROWS, SEED) if absent

$(DEFAULT_DATA): | $(STAMP)
	$(call step,Generating $(ROWS) synthetic customers into $@ (seed $(SEED)))
	$(SEGMENTATION) generate $@ --rows $(ROWS) --seed $(SEED)

$(DEFAULT_ORDERS): | $(STAMP)
	$(call step,Generating the order lines of the $(ROWS) synthetic customers into $@ (seed $(SEED)))
	$(SEGMENTATION) generate-orders $@ --rows $(ROWS) --seed $(SEED)

init: $(STAMP) $(DEFAULT_INPUTS) ## profile DATA and/or ORDERS and write the starter declaration, dbt_project/declarations/<file stem>.yml (FORCE=1 overwrites)
	$(call step,Profiling $$DATA $$ORDERS and writing its declaration)
	$(SEGMENTATION) init $(INPUTS) $(if $(filter 1 yes true,$(FORCE)),--force) $(if $(DECLARATION),--output "$$DECLARATION")

begin: setup ## start a working copy of the warehouse (the published one stays untouched)
	$(call step,Starting a working copy of $(WAREHOUSE))
	$(SEGMENTATION) begin '$(WAREHOUSE)'

ingest: begin $(DEFAULT_INPUTS) ## check the declaration and the input files, load them into raw.customers and raw.orders (CSV_SEP, CSV_ENCODING, DECLARATION)
	$(call step,Loading $$DATA $$ORDERS into $(WAREHOUSE))
	$(SEGMENTATION) ingest $(INPUTS)

mart: ingest ## dbt: staging → intermediate → customer_features mart, with tests
	$(call step,dbt build: staging → intermediate → marts (tests included))
	$(DBT) build --exclude 'source:segmentation+' --exclude-resource-type unit_test

quality: mart ## stop if more than MAX_QUARANTINE_SHARE of the rows were quarantined (probably the wrong file)
	$(call step,Checking the share of quarantined rows (at most $(MAX_QUARANTINE_SHARE)))
	$(SEGMENTATION) check-quality

segment: quality ## cluster the mart (mixture model, k by BIC; K-Means alongside; K= forces k) and write segments back
	$(call step,Clustering customers)
	$(SEGMENTATION) segment

profiles: segment ## dbt: customer_segments and segment profiles, with tests
	$(call step,dbt build: segment profiles)
	$(DBT) build --select 'source:segmentation+' --exclude-resource-type unit_test --no-write-json  # the manifest from `mart` stays the one Python reads

# ENGINE=spark replaces mart → quality → segment → profiles by one process on Spark
spark: ingest ## ENGINE=spark: dbt-spark models, quality check, segments (latent class model by default, scored on the executors; ALGO=kmeans: MLlib K-Means) and profiles, in one process
	$(call step,On Spark: dbt build → quality check → segments (latent class model; ALGO=kmeans: MLlib K-Means) → segment profiles)
	$(SEGMENTATION) spark $(if $(ORDERS),--orders "$$ORDERS")

publish: $(if $(SPARK),spark,profiles) ## swap the finished working copy in as the warehouse (atomic)
	$(call step,Publishing $(WAREHOUSE))
	$(SEGMENTATION) publish '$(WAREHOUSE)'

report: publish ## render the persona report (REPORT_LANG=en|fr)
	$(call step,Rendering the persona report)
	SEGMENTATION_WAREHOUSE='$(abspath $(WAREHOUSE))' $(SEGMENTATION) report

score: setup ## assign segments to new customers (DATA=new.csv and/or ORDERS=new_lines.csv) with the latest saved model, no refit
	@$(SEGMENTATION) exclusive '$(WAREHOUSE)' -- $(MAKE) --no-print-directory score-steps

SCORING_DIR := $(dir $(abspath $(WAREHOUSE)))scoring
score-steps: begin
	$(call step,Cleaning $$DATA $$ORDERS with the same dbt models into $(SCORING_DIR))
	rm -rf '$(SCORING_DIR)' && mkdir -p '$(SCORING_DIR)'
	SEGMENTATION_WAREHOUSE='$(SCORING_DIR)/$(notdir $(WAREHOUSE))' $(SEGMENTATION) ingest $(INPUTS) --declaration-of '$(WAREHOUSE)'
	cd dbt_project && SEGMENTATION_WAREHOUSE='$(SCORING_DIR)/$(notdir $(WAREHOUSE))' DBT_TARGET_PATH='$(SCORING_DIR)/dbt_target' \
	  DBT_LOG_PATH='$(SCORING_DIR)/dbt_target/logs' $(abspath $(BIN))/dbt build --exclude 'source:segmentation+' --exclude-resource-type unit_test
	$(call step,Scoring with the latest run's saved model (no refit))
	$(SEGMENTATION) score '$(SCORING_DIR)/$(notdir $(WAREHOUSE))' '$(SCORING_DIR)/dbt_target/manifest.json'
	$(SEGMENTATION) publish '$(WAREHOUSE)'
	@printf '\n\033[1mScores: table segmentation.segment_scores in %s\033[0m\n' '$(WAREHOUSE)'

test: setup $(SPARK_STAMP) lint ## lint, then run the whole test suite (unit, dbt, end to end)
	$(call step,Running the tests)
	env -u DATA -u ORDERS -u AS_OF -u DECLARATION $(BIN)/python -m pytest python/tests

bench: setup ## benchmark 10 thousand, 1 million and 10 million customers (BENCH_FLAGS="--skip-largest --draws 0" for a quick run)
	$(call step,Benchmark: the real pipeline at each size, and the seed notebook's method at 1 million)
	$(BIN)/python -m segmentation.bench $(BENCH_FLAGS)

lint: $(STAMP) ## ruff check and format check
	$(BIN)/ruff check python
	$(BIN)/ruff format --check python

clean: ## remove generated data, warehouse, models, reports and dbt artefacts (keeps .venv)
	rm -rf data/raw data/models data/bench data/scoring data/.build data/spark data/*.duckdb data/*.duckdb.wal data/*.lock $(OUTPUT_DIR) dbt_project/target dbt_project/logs
