#!/usr/bin/env bash
# Set everything up, then run the nightly suite against the embedded lab PBX (started and stopped
# by the harness) and print where the results are. Extra arguments go to 'harness run',
# e.g. --target my-pbx.yaml to run against your own PBX.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/harness run scenarios/nightly.yaml "$@"
