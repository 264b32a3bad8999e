#!/usr/bin/env bash
# Tools the benchmarks compare against, in their own virtualenv (never rkdeploy's).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
[ -x .bench-venv/bin/python ] || python3 -m venv .bench-venv
.bench-venv/bin/pip install -q ansible-core pyinfra
