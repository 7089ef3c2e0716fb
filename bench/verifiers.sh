#!/usr/bin/env bash
# Compares rlcs's verifiers with Hugging Face math-verify 0.9.0 on the same cases:
# accuracy against each case's `expected`, and verifications/second, single-threaded.
#
#   bench/verifiers.sh                      # every bench/cases/*.jsonl
#   bench/verifiers.sh bench/cases/rlcs_cases.jsonl
#
# Needs python3 (3.10+) and Rust. Creates bench/.venv with math-verify on first run,
# builds rlcs in release mode (scripts/rlcs), prints a Markdown table and writes it to
# bench/results/verifiers-<date>.md (raw JSON and logs beside it, git-ignored).
# RLCS_BIN overrides the rlcs command (default: scripts/rlcs).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

MV_VERSION="0.9.0"
VENV="bench/.venv"
PY="$VENV/bin/python"
RLCS_BIN="${RLCS_BIN:-scripts/rlcs}"
RESULTS="bench/results"
DATE="$(date -u +%Y-%m-%d)"

if [ "$#" -gt 0 ]; then
  CASES=("$@")
else
  CASES=(bench/cases/*.jsonl)
fi

# --- math-verify in bench/.venv -----------------------------------------------------
if ! "$PY" -c "import importlib.metadata as m, sys; sys.exit(m.version('math-verify') != '$MV_VERSION')" 2>/dev/null; then
  echo "bench: installing math-verify==$MV_VERSION into $VENV" >&2
  [ -x "$PY" ] || python3 -m venv "$VENV"
  "$PY" -m pip install --quiet --upgrade pip >&2
  # The extra is spelled antlr4_13_2 in pyproject.toml, antlr4-13-2 in the wheel metadata.
  "$PY" -m pip install --quiet "math-verify[antlr4-13-2]==$MV_VERSION" >&2
fi

# --- rlcs (release build) -----------------------------------------------------------
echo "bench: building rlcs (release)" >&2
if [ "$RLCS_BIN" = "scripts/rlcs" ]; then
  scripts/rlcs --help >/dev/null # builds; the timed runs below then only exec
fi

mkdir -p "$RESULTS"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
REPORT_ARGS=()
status=0
for cases in "${CASES[@]}"; do
  name="$(basename "$cases" .jsonl)"
  mv_json="$RESULTS/$STAMP-$name-math-verify.json"
  rl_json="$RESULTS/$STAMP-$name-rlcs.json"
  echo "bench: $cases: math-verify" >&2
  if ! "$PY" bench/math_verify_run.py "$cases" >"$mv_json" 2>"$RESULTS/$STAMP-$name-math-verify.log"; then
    echo "bench: math-verify failed on $cases (log: $RESULTS/$STAMP-$name-math-verify.log)" >&2
    status=1
  fi
  echo "bench: $cases: rlcs" >&2
  if ! "$RLCS_BIN" bench verifiers --cases "$cases" --json --threads 1 >"$rl_json" 2>"$RESULTS/$STAMP-$name-rlcs.log"; then
    echo "bench: rlcs failed on $cases (log: $RESULTS/$STAMP-$name-rlcs.log)" >&2
    status=1
  fi
  REPORT_ARGS+=("$cases" "$mv_json" "$rl_json")
done

OUT_MD="$RESULTS/verifiers-$DATE.md"
python3 bench/report.py "${REPORT_ARGS[@]}" | tee "$OUT_MD"
echo "bench: wrote $OUT_MD" >&2
exit "$status"
