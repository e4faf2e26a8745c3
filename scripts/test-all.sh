#!/usr/bin/env bash
# Builds the three test environments and runs the three suites; fails if any suite fails.
#   .venv          core + dev tools (no orchestrator)      -> tests/core
#   .venv-airflow  core + apache-airflow 3.3 + providers + astronomer-cosmos -> tests/airflow
#   .venv-prefect  core + prefect 3.9 + prefect-sqlalchemy -> tests/prefect
# apache-airflow and prefect cannot share one environment (fastapi pins), hence three venvs.
# Needs only python3 (>=3.11) and pip: uv is installed into .venv-tools on first use.
set -uo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if command -v uv >/dev/null 2>&1; then
  UV=$(command -v uv)
else
  if [ ! -x .venv-tools/bin/uv ]; then
    "$PY" -m venv .venv-tools && .venv-tools/bin/pip install -q uv || { echo "could not install uv"; exit 2; }
  fi
  UV=.venv-tools/bin/uv
fi

setup_env() {  # name extras
  local venv=$1 extras=$2
  [ -x "$venv/bin/python" ] || "$UV" venv -q -p "$PY" "$venv" || return 1
  VIRTUAL_ENV="$venv" "$UV" pip install -q -e ".[$extras]" || return 1
}

# The HTML report's screenshot test drives headless Chromium (Debian's package); install it where we can.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "=== installing chromium for the report screenshot test"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "chromium could not be installed: the screenshot test will fail and say why"
fi

# The Spark SQL test runs a local Spark (pyspark, the core suite's `spark` extra) on a JVM: Debian's Java.
if ! command -v java >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "=== installing Java for the local Spark test"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jre-headless >/dev/null) \
    || echo "Java could not be installed: the Spark test will fail and say why"
fi

# Database tests take PostgreSQL from DATAENG_TEST_POSTGRES_URL, else testcontainers, else they fail.
# A server already answering on the standard local port is used when the variable is unset.
if [ -z "${DATAENG_TEST_POSTGRES_URL:-}" ] && command -v pg_isready >/dev/null 2>&1 \
   && pg_isready -q -h 127.0.0.1 -p 5432; then
  export DATAENG_TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:5432/test"
  echo "=== using the local PostgreSQL: $DATAENG_TEST_POSTGRES_URL"
fi

export MPLBACKEND=Agg
export PYTHONHASHSEED=0
declare -A rc
summary=()
setup_failures=0
rm -f .pytest-*.log .pytest-total
final_line() {  # pytest's closing "N passed, M failed ... in Ts" line, with or without -q's missing '=' rule
  grep -E '^(=+ )?([0-9]+ [a-z]+,? ?)+.* in [0-9.]+s( \([0-9:]+\))?( =+)?$' "$1" 2>/dev/null | tail -1
}
run_suite() {  # label venv extras testdir [pytest args...]
  local label=$1 venv=$2 extras=$3 dir=$4; shift 4
  echo "=== [$label] installing $venv (.[$extras])"
  if ! setup_env "$venv" "$extras"; then
    echo "=== [$label] environment setup FAILED"; rc[$label]=2; summary+=("$label: setup failed")
    setup_failures=$((setup_failures + 1)); return
  fi
  echo "=== [$label] pytest $dir"
  "$venv/bin/python" -m pytest "$dir" "$@" 2>&1 | tee ".pytest-$label.log"
  local code=${PIPESTATUS[0]}
  rc[$label]=$code
  summary+=("$label: $(final_line ".pytest-$label.log" | tr -d '=' | sed 's/^ *//; s/ *$//') (exit $code)")
}

run_suite core .venv dev,spark tests/core "$@"
run_suite airflow .venv-airflow airflow,cosmos,dev tests/airflow "$@"
run_suite prefect .venv-prefect prefect,dev tests/prefect "$@"

echo
echo "=== summary"
printf '  %s\n' "${summary[@]}"
# One plain closing line over the three suites (CI reads the last one it prints).
passed=$(for l in core airflow prefect; do final_line ".pytest-$l.log"; done | grep -oE '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
failed=$(for l in core airflow prefect; do final_line ".pytest-$l.log"; done | grep -oE '[0-9]+ (failed|errors?)' | awk '{s+=$1} END {print s+0}')
echo "$passed passed, $((failed + setup_failures)) failed" > .pytest-total
status=0
for k in "${!rc[@]}"; do [ "${rc[$k]}" -eq 0 ] || status=1; done
exit $status
