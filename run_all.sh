#!/usr/bin/env bash
# Set up (if needed) and run a whole run: every notebook in order through papermill, offline by
# default, replaying the LLM responses stored in data/raw/. It is `valuelex run` after the set-up;
# executed notebooks go to build/, the HTML tutorial to build/html/ (open build/html/index.html).
#
#   ./run_all.sh                          set up if needed, run the default run (it ends with verify)
#   ./run_all.sh my_run                   a run file: configs/runs/my_run.yaml, or a path
#   ./run_all.sh --set efa.n_factors=3    change a setting for this run only (repeatable)
#   ./run_all.sh --only 03 04             only these notebooks; --from 05: from this one on
#   ./run_all.sh my_live_run --yes        a live run: prints its plan and cost, asks unless --yes
#   ./run_all.sh my_live_run --retry-lost also send again the calls a killed run left without an answer
#                                         (--retry-failed: given-up errors; --retry-damaged: damaged records)
#   ./run_all.sh --setup-only             create .venv and the Jupyter kernel, run nothing
#   ./run_all.sh --install-local-models   also build llama.cpp's server and install the
#                                         four local GGUF models (sha256-verified)
#   ./run_all.sh --local-models "a b"     the same, for the named model cards only
#
# Settings are checked before anything runs: an unknown name or a value of the wrong type stops
# with a one-line error naming the file and field, exit code 2. Ctrl-C or SIGTERM stops the running
# notebook and its kernel (exit code 130 or 143). `.venv/bin/valuelex --help` lists the other commands.
set -euo pipefail
cd "$(dirname "$0")"

VENV=.venv
PY=$VENV/bin/python
KERNEL=valuelex
RUN_ARGS=()
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
    --setup-only) SETUP_ONLY=1; shift ;;
    --install-local-models) LOCAL=1; shift ;;
    --local-models) needs 1 "$@"; LOCAL=1; LOCAL_NAMES="$2"; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    --set|-s) needs 1 "$@"; RUN_ARGS+=("$1" "$2"); shift 2 ;;
    --only) needs 1 "$@"; RUN_ARGS+=("$1"); shift
      while [[ $# -gt 0 && $1 != -* ]]; do RUN_ARGS+=("$1"); shift; done ;;
    --from) needs 1 "$@"; RUN_ARGS+=("$1" "$2"); shift 2 ;;
    --yes|--retry-failed|--retry-damaged|--retry-lost) RUN_ARGS+=("$1"); shift ;;
    -*) usage_error "unknown argument $1 (see --help)" ;;
    *) RUN_ARGS+=("$1"); shift ;;
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
  "$PY" -m valuelex.llm.local "$@"
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
# valuelex run stops the running notebook and its kernel on SIGTERM; a signal to this script is passed on,
# and if this script is killed outright (SIGKILL), valuelex gets a TERM from Linux (VALUELEX_PARENT_PID)
VALUELEX_PARENT_PID=$$ "$VENV/bin/valuelex" run "${RUN_ARGS[@]}" &
child=$!
stopped=""
trap 'stopped=130; kill -TERM "$child" 2>/dev/null || true' INT
trap 'stopped=143; kill -TERM "$child" 2>/dev/null || true' TERM
code=0
wait "$child" || code=$?
while kill -0 "$child" 2>/dev/null; do wait "$child" || code=$?; done  # a signal ends the first wait early
if [[ -n $stopped ]]; then exit "$stopped"; fi
exit "$code"  # a run that regenerated the committed outputs ends with `valuelex verify` (1 if they differ)
