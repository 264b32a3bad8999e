#!/usr/bin/env bash
# Set up, then run the whole test suite (unit tests and the end-to-end suite on the board lab).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The first run builds the boards' arm64 rootfs (a few minutes), cached in ~/.cache/rkdeploy.
.venv/bin/python -m tests.lab.rootfs > /dev/null
set +e
.venv/bin/python -m pytest -ra "$@"
rc=$?
set -e
if [ $rc -eq 5 ]; then
  echo "test.sh: pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit $rc
