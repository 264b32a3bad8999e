#!/usr/bin/env bash
# Set up, bring up the built-in lab fleet (four emulated boards) and run the main job on it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/inv lab.status | grep -q running || .venv/bin/inv lab.up
inventory=/var/lib/rkdeploy-lab/demo/inventory.yaml
set +e
.venv/bin/inv check --all --inventory "$inventory"
echo "check exit code: $? (0 all match; bit 2 mismatch, 4 unreachable, 8 failed). Stop the lab with: .venv/bin/inv lab.down"
