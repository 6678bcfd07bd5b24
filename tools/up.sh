#!/usr/bin/env bash
# First command of the README: install, make sure Docker answers, build the agent image if missing, start.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/tools/bootstrap.sh"
cd "$root"
"$root/.venv/bin/python" -m tools.docker_engine ensure
"$root/.venv/bin/hermitcrab" image build --if-missing
exec "$root/.venv/bin/hermitcrab" up "$@"
