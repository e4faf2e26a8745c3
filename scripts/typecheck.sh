#!/usr/bin/env bash
# mypy cannot follow setuptools' editable-install import hook, so it checks the core through a
# symlinked tree that has the installed layout: .typecheck/dataeng_agents/core -> core/.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .typecheck/dataeng_agents
ln -sfn ../../core .typecheck/dataeng_agents/core
MYPYPATH=.typecheck .venv/bin/mypy --explicit-package-bases -p dataeng_agents.core "$@"
