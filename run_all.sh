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
#
# Parameters are checked before anything runs: a name no notebook to run takes, or a value of
# the wrong type (-p use_system_prompt maybe), stops with a one-line error and exit code 2.
# Each notebook runs in a process group of its own; Ctrl-C or SIGTERM stops it and its kernel
# (exit code 130 or 143).
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

usage_error() { echo "run_all.sh: $*" >&2; exit 2; }
needs() {  # needs N OPTION ARGS...: the option must be followed by N values
  local n=$1 option=$2; shift 2
  if [[ $# -lt $n ]]; then usage_error "$option needs $n value(s) (see --help)"; fi
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --params) needs 1 "$@"; PARAMS+=(-f "$2"); shift 2 ;;
    -p) needs 2 "$@"; PARAMS+=(-p "$2" "$3"); shift 3 ;;
    --only) needs 1 "$@"; ONLY="$2"; shift 2 ;;
    --setup-only) SETUP_ONLY=1; shift ;;
    --install-local-models) LOCAL=1; shift ;;
    --local-models) needs 1 "$@"; LOCAL=1; LOCAL_NAMES="$2"; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) usage_error "unknown argument $1 (see --help)" ;;
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

export PYTHONHASHSEED=0 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# which notebooks run, each with only its own parameters, checked and converted (build/params/NAME.yaml)
mkdir -p build/html build/logs build/params
selected=$("$PY" -m valuelex.parameters --notebooks notebooks --out build/params ${ONLY:+--only "$ONLY"} \
  "${PARAMS[@]}") || exit $?
mapfile -t notebooks <<< "$selected"

# Children run in process groups of their own (a new session each), so that Ctrl-C or a SIGTERM to this
# script stops them all: papermill shuts its kernel down on SIGTERM; what is left after a grace period is killed.
GROUPS_STARTED=()
start_group() {  # run "$@" in the background as the leader of a new session; STARTED is its pid (= group id)
  if command -v setsid >/dev/null; then
    setsid "$@" &
  else
    "$PY" -c 'import os, sys; os.setsid(); os.execvp(sys.argv[1], sys.argv[1:])' "$@" &
  fi
  STARTED=$!
  GROUPS_STARTED+=("$STARTED")
}
stop_groups() {
  local pg waited=0
  for pg in "${GROUPS_STARTED[@]}"; do kill -TERM -- "-$pg" 2>/dev/null || true; done
  while ((waited < 150)); do  # up to 15 s for papermill to stop its kernel
    local alive=0
    for pg in "${GROUPS_STARTED[@]}"; do kill -0 -- "-$pg" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1; waited=$((waited + 1))
  done
  for pg in "${GROUPS_STARTED[@]}"; do kill -KILL -- "-$pg" 2>/dev/null || true; done
}
on_signal() {
  trap - INT TERM
  say "interrupted by SIG$1: stopping the running notebook, its kernel and the HTML renders"
  stop_groups
  exit "$2"
}
trap 'on_signal INT 130' INT
trap 'on_signal TERM 143' TERM

total_started=$SECONDS
: > build/timings.tsv
renders=()
for nb in "${notebooks[@]}"; do
  name=$(basename "$nb" .ipynb)
  say "running $name"
  started=$SECONDS
  start_group "$VENV/bin/papermill" "$nb" "build/$name.ipynb" -k "$KERNEL" --cwd notebooks \
    --log-level WARNING -f "build/params/$name.yaml" > "build/logs/$name.log" 2>&1
  if ! wait "$STARTED"; then
    code=0
    reason=$("$PY" -m valuelex.errors "build/$name.ipynb") || code=$?
    say "FAILED: $name: $reason"
    if [[ $code == 2 ]]; then
      exit 2  # a mistake in the input (a config file, a parameter, a key): the line above says what to fix
    fi
    say "log: build/logs/$name.log, executed notebook: build/$name.ipynb; its last lines:"
    tail -n 30 "build/logs/$name.log" >&2
    exit 1
  fi
  elapsed=$((SECONDS - started))
  printf '%s\t%s\n' "$name" "$elapsed" >> build/timings.tsv
  # render the HTML page in the background while the next notebook runs (2 cores)
  start_group "$VENV/bin/jupyter" nbconvert --to html --log-level WARN --output-dir build/html "build/$name.ipynb" \
    >> "build/logs/$name.log" 2>&1
  renders+=("$STARTED")
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
