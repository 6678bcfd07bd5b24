#!/usr/bin/env bash
# Second command of the README: lint, type-check, unit tests, then integration tests on the real engine.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/tools/bootstrap.sh" dev
cd "$root"
py="$root/.venv/bin/python"
export PATH="$root/.venv/bin:$PATH"
echo "== ruff"
ruff check .
echo "== mypy"
mypy events sessiondb credentials actors channels config tools
mypy container/agent_runner  # the in-container runner: its own package, checked on its own
echo "== unit tests"
"$py" -m pytest -q tests/unit
echo "== docker engine and agent image"
"$py" -m tools.docker_engine ensure
hermitcrab image build --if-changed
echo "== integration tests"
"$py" -m pytest -q tests/integration
