#!/usr/bin/env bash
# Set up, then run the whole test suite (unit tests and the end-to-end suite on the board lab).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The first run builds the boards' arm64 rootfs (a few minutes), cached in ~/.cache/rkdeploy.
.venv/bin/python -m tests.lab.rootfs > /dev/null
# The REAL rknn-toolkit2 2.3.2 for the toolkit tests (tests/unit/test_toolkit_real.py,
# tests/e2e/test_perf_real_toolkit.py): its own virtualenv from the pinned set in
# rkdeploy/toolkit_constraints/2.3.2.txt, made once per machine (~40 s, ~1.3 GB) and cached as
# ~/.cache/rkdeploy/toolkit-2.3.2-<hash of that file>. Under CI a failure here is a failure; elsewhere the
# real-toolkit tests skip with the reason.
if [ -z "${RKDEPLOY_TOOLKIT_PYTHON:-}" ]; then
  if tk_python=$(.venv/bin/python -m rkdeploy.toolkit 2.3.2); then
    export RKDEPLOY_TOOLKIT_PYTHON="$tk_python"
  elif [ "${CI:-}" = true ]; then
    echo "test.sh: could not install the real rknn-toolkit2 2.3.2 environment (see above)" >&2
    exit 1
  else
    echo "test.sh: no real rknn-toolkit2 environment: its tests will be skipped" >&2
  fi
fi
# Every package a test installs or imports into a bundle, fetched now into the local wheel cache
# (~/.cache/rkdeploy/wheels, tests/wheels.py): the one step that reaches the package index. The tests
# install from it with `pip --no-index --find-links`; RKDEPLOY_NO_INDEX=1 keeps the lab's SDK trees to it too.
if ! .venv/bin/python -m tests.wheels > /dev/null && [ "${CI:-}" = true ]; then
  echo "test.sh: could not fill the local wheel cache (see above)" >&2
  exit 1
fi
export RKDEPLOY_NO_INDEX=1
set +e
.venv/bin/python -m pytest -ra "$@"
rc=$?
set -e
if [ $rc -eq 5 ]; then
  echo "test.sh: pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit $rc
