#!/usr/bin/env bash
# Set up (if needed) and run every notebook in order through papermill, offline,
# replaying the LLM responses stored in data/raw/. Executed notebooks go to build/,
# rendered HTML to build/html/.
#
#   ./run_all.sh                          set up if needed, run all notebooks
#   ./run_all.sh --params my.yaml         papermill parameters for every notebook, from YAML
#   ./run_all.sh -p mode live -p panel local   single parameters (papermill -p NAME VALUE)
#   ./run_all.sh --only 03                run only notebooks whose name starts with 03
#   ./run_all.sh --setup-only             create .venv and the Jupyter kernel, run nothing
#   ./run_all.sh --install-local-models   also build llama.cpp's server and install the
#                                         four local GGUF models (sha256-verified)
#   ./run_all.sh --local-models "a b"     the same, for the named model cards only
set -euo pipefail
cd "$(dirname "$0")"

VENV=.venv
PY=$VENV/bin/python
KERNEL=valuelex
PARAMS=()
ONLY=""
SETUP_ONLY=0
LOCAL=0
LOCAL_NAMES=""

while [[ $# -gt 0 ]]; do
  case "$1" in
    --params) PARAMS+=(-f "$2"); shift 2 ;;
    -p) PARAMS+=(-p "$2" "$3"); shift 3 ;;
    --only) ONLY="$2"; shift 2 ;;
    --setup-only) SETUP_ONLY=1; shift ;;
    --install-local-models) LOCAL=1; shift ;;
    --local-models) LOCAL=1; LOCAL_NAMES="$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "run_all.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

say() { printf '[run_all %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

setup_venv() {
  local stamp=$VENV/.valuelex-lock
  local want
  want=$(cat requirements.lock pyproject.toml | sha256sum | cut -c1-16)
  if [[ -f $stamp && "$(cat "$stamp")" == "$want" ]]; then
    return
  fi
  local started=$SECONDS
  if [[ ! -x $PY ]]; then
    say "creating $VENV"
    python3.11 -m venv "$VENV" 2>/dev/null || python3 -m venv "$VENV"
    "$PY" -m pip install -q --upgrade pip
  fi
  say "installing CPU torch first (a plain 'torch' would pull a multi-GB CUDA build)"
  "$PY" -m pip install -q torch==2.13.0
  say "installing the locked dependencies (requirements.lock)"
  "$PY" -m pip install -q -r requirements.lock
  "$PY" -m pip install -q --no-deps -e .
  "$PY" -m ipykernel install --sys-prefix --name "$KERNEL" --display-name "Python (valuelex)" >/dev/null
  echo "$want" > "$stamp"
  say "environment ready in $((SECONDS - started)) s"
}

setup_local_models() {
  if ! "$PY" -c "import llama_cpp.server" 2>/dev/null; then
    say "building llama-cpp-python[server] (about 5 minutes the first time; pip caches the wheel)"
    CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) "$PY" -m pip install -q -r requirements-local.txt -c requirements.lock
  fi
  say "installing and verifying the local GGUF models"
  "$PY" -m valuelex.local_models "$@"
}

setup_venv
if [[ $LOCAL == 1 ]]; then
  # shellcheck disable=SC2086
  setup_local_models $LOCAL_NAMES
fi
if [[ $SETUP_ONLY == 1 ]]; then
  exit 0
fi

mkdir -p build/html build/logs
export PYTHONHASHSEED=0 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
total_started=$SECONDS
shopt -s nullglob
notebooks=(notebooks/[0-9][0-9]_*.ipynb)
if [[ ${#notebooks[@]} -eq 0 ]]; then
  say "no notebooks found in notebooks/"; exit 1
fi
: > build/timings.tsv
renders=()
for nb in "${notebooks[@]}"; do
  name=$(basename "$nb" .ipynb)
  if [[ -n $ONLY && $name != "$ONLY"* ]]; then
    continue
  fi
  say "running $name"
  started=$SECONDS
  if ! "$VENV/bin/papermill" "$nb" "build/$name.ipynb" -k "$KERNEL" --cwd notebooks \
      --log-level WARNING "${PARAMS[@]}" > "build/logs/$name.log" 2>&1; then
    say "FAILED: $name (log: build/logs/$name.log, executed notebook: build/$name.ipynb)"
    tail -n 30 "build/logs/$name.log" >&2
    exit 1
  fi
  elapsed=$((SECONDS - started))
  printf '%s\t%s\n' "$name" "$elapsed" >> build/timings.tsv
  # render the HTML page in the background while the next notebook runs (2 cores)
  "$VENV/bin/jupyter" nbconvert --to html --log-level WARN --output-dir build/html "build/$name.ipynb" \
    >> "build/logs/$name.log" 2>&1 &
  renders+=($!)
  say "done $name in ${elapsed} s"
done
for pid in "${renders[@]}"; do
  wait "$pid" || { say "FAILED: rendering HTML (see build/logs/)"; exit 1; }
done
"$PY" -m valuelex.report html-index build/html >/dev/null
"$PY" -m valuelex.report figure-index >/dev/null
"$PY" -m valuelex.report manifest "${PARAMS[@]}" >/dev/null
say "all notebooks done in $((SECONDS - total_started)) s; executed copies in build/, HTML in build/html/"
if [[ ${#PARAMS[@]} -eq 0 ]]; then "$PY" -m valuelex.report verify; fi  # default run: compare with the committed tables
