#!/usr/bin/env bash
# The test command: sets up from nothing (venv, llama.cpp server, the small SmolLM2 model),
# then lint, format, clean-notebook check and the test suite.
#   ./run_tests.sh               everything
#   ./run_tests.sh -k store      extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")"
./run_all.sh --setup-only --local-models smollm2-135m-instruct
PY=.venv/bin/python
echo "[run_tests] ruff check"
.venv/bin/ruff check .
echo "[run_tests] ruff format --check"
.venv/bin/ruff format --check .
echo "[run_tests] source notebooks carry no outputs"
$PY -m valuelex.app.notebook_hygiene notebooks
echo "[run_tests] pytest"
export PYTHONHASHSEED=0 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec $PY -m pytest "$@"
