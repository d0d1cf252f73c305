#!/usr/bin/env bash
# Set everything up, then run the project's checks: ruff, mypy, the layer contract and the whole pytest suite
# (unit tests, and integration tests against the real kamailio, rtpengine and pjsua2).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "== ruff"; .venv/bin/ruff check harness tests benchmarks
echo "== mypy"; .venv/bin/mypy
echo "== lint-imports (layers, no cycles)"; .venv/bin/lint-imports
echo "== pytest"; .venv/bin/python -m pytest "$@"
