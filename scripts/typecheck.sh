#!/usr/bin/env bash
# mypy over the three packages and the three test suites, each in the venv that has its orchestrator:
#   core                        .venv          mypy --strict (pyproject's [tool.mypy])
#   airflow_provider            .venv-airflow  mypy --strict
#   prefect_integration         .venv-prefect  mypy --strict
#   tests/{core,airflow,prefect} their suite's venv, strict minus the annotation requirements
#                               (bodies are still checked: check_untyped_defs stays on)
# Usage: scripts/typecheck.sh [core|airflow|prefect|tests-core|tests-airflow|tests-prefect ...]
#        (default: all six); exits non-zero if any target fails.
#
# mypy cannot follow setuptools' editable-install import hook, so the packages are checked through a
# symlinked tree that has the installed layout: .typecheck/dataeng_agents/core -> core/, ...
set -uo pipefail
cd "$(dirname "$0")/.."

mkdir -p .typecheck/dataeng_agents
for pkg in core airflow_provider prefect_integration; do
  ln -sfn "../../$pkg" ".typecheck/dataeng_agents/$pkg"
done

# pytest puts tests/ and each suite's folder on sys.path (rootdir conftest, prepend import mode);
# the tests are typed where it helps, so strict's annotation demands are relaxed for them only
TEST_FLAGS=(--allow-untyped-defs --allow-incomplete-defs --allow-untyped-calls --allow-untyped-decorators
  --allow-any-generics --allow-subclassing-any --no-warn-return-any --implicit-reexport --no-warn-unused-ignores)

run() {  # label venv mypy-args...
  local label=$1 venv=$2; shift 2
  echo "--- mypy $label ($venv)"
  if [ ! -x "$venv/bin/mypy" ]; then
    echo "$venv/bin/mypy is missing: create $venv first (scripts/test-all.sh does)"; return 1
  fi
  MYPYPATH=${MYPYPATH_EXTRA:-.typecheck} "$venv/bin/mypy" --explicit-package-bases "$@"
}

suite_files() {  # suite folder: its modules plus tests/*.py (tests/conftest.py only for the core suite)
  local dir=$1
  ls tests/*.py | { if [ "$dir" = core ]; then cat; else grep -v '^tests/conftest.py$'; fi; }
  ls "tests/$dir"/*.py
}

targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(core airflow prefect tests-core tests-airflow tests-prefect)
status=0
for target in "${targets[@]}"; do
  case $target in
    core) run core .venv -p dataeng_agents.core || status=1 ;;
    airflow) run airflow_provider .venv-airflow -p dataeng_agents.airflow_provider || status=1 ;;
    prefect) run prefect_integration .venv-prefect -p dataeng_agents.prefect_integration || status=1 ;;
    tests-core|tests-airflow|tests-prefect)
      suite=${target#tests-}
      venv=.venv; [ "$suite" = airflow ] && venv=.venv-airflow; [ "$suite" = prefect ] && venv=.venv-prefect
      # shellcheck disable=SC2046
      MYPYPATH_EXTRA=.typecheck:tests:tests/$suite run "tests/$suite" "$venv" "${TEST_FLAGS[@]}" \
        $(suite_files "$suite") || status=1 ;;
    *) echo "unknown target: $target"; status=2 ;;
  esac
done
exit $status
