#!/usr/bin/env bash
# Set up, bring up the built-in lab fleet (four emulated aarch64 boards) and run the main job on it:
# check the fleet, make an SDK bundle, provision every board, check again, roll out a model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
inv=.venv/bin/inv
$inv lab.status | grep -q running || $inv lab.up
inventory=/var/lib/rkdeploy-lab/demo/inventory.yaml
# The lab's bundle describes stand-ins: keep it out of the project's bundles/ (invoke reads this variable
# as rkdeploy.bundles_dir).
export INVOKE_RKDEPLOY_BUNDLES_DIR=/var/lib/rkdeploy-lab/demo/bundles

echo; echo "== 1. the fleet as found (exit code 2 = version mismatches)"
$inv check --all --inventory "$inventory" || true

echo; echo "== 2. an SDK bundle from Rockchip's 2.3.2 tree (real rknn_server and lite2; the tree has no aarch64"
echo "      librknnrt.so, so the lab's labelled stand-in is added with --runtime)"
rockchip=${RKDEPLOY_ROCKCHIP_DIR:-../shared/rockchip}
if [ -d "$rockchip/sdk-trees/rknn-toolkit2-v2.3.2" ]; then
  runtime=$(.venv/bin/python -c 'from tests.lab.sdk import standin_runtime; print(standin_runtime("2.3.2"))')
  $inv bundle.import "$rockchip/sdk-trees/rknn-toolkit2-v2.3.2" --runtime "aarch64=$runtime" --python 3.11
else
  echo "(Rockchip's files are not at $rockchip: using the lab's all-stand-in 2.3.2 tree; set RKDEPLOY_ROCKCHIP_DIR)"
  sdk=$(.venv/bin/python -c 'from tests.lab.sdk import cached_tree; print(cached_tree("2.3.2"))')
  $inv bundle.import "$sdk" --python 3.11
fi

echo; echo "== 3. provision every board (a second run would change and send nothing)"
$inv provision --all --bundle 2.3.2 --inventory "$inventory" || true

echo; echo "== 4. the fleet now"
set +e
$inv check --all --bundle 2.3.2 --inventory "$inventory"
code=$?

echo; echo "== 5. roll out a model built for rk3588 (refused on the rk3568 board, with the reason)"
model=/var/lib/rkdeploy-lab/demo/detector-rk3588.rknn     # a valid .rknn the project generates (no NPU code in it)
.venv/bin/python -m tests.lab.modelgen "$model" --soc rk3588 --format 6 --toolkit 2.3.2 --size-kb 2048
$inv models.inspect "$model"
$inv deploy "$model" --all --name detector --inventory "$inventory"

echo; echo "== 6. the same for the RK3566/RK3568 family: a model built for rk3566 runs on the rk3568 board"
model356x=/var/lib/rkdeploy-lab/demo/detector-rk3566.rknn
.venv/bin/python -m tests.lab.modelgen "$model356x" --soc rk3566 --format 6 --toolkit 2.3.2 --size-kb 1024
$inv deploy "$model356x" --group rk3568 --name detector --inventory "$inventory"
$inv models.list --all --inventory "$inventory"

echo; echo "== 7. convert an ONNX model for the fleet's own release with the real rknn-toolkit2 (its pinned env is"
echo "      built once, ~1.4 GB), one .rknn per SoC family the boards have, then roll them out"
toolkit=$(.venv/bin/python -m rkdeploy.toolkit 2.3.2)
export RKDEPLOY_TOOLKIT_PYTHON=$toolkit
work=/var/lib/rkdeploy-lab/demo/convert
mkdir -p "$work"
"$toolkit" tests/lab/onnxgen.py "$work/tiny.onnx" two_input      # a small model the demo makes (onnx package)
$inv convert --model "$work/tiny.onnx" --for-fleet --all --inventory "$inventory" --name tiny --out "$work"
for f in "$work"/tiny-*.rknn; do
  $inv deploy "$f" --all --name tiny --inventory "$inventory" || true   # each lands where its SoC fits, refused elsewhere
done
$inv models.list --all --inventory "$inventory"

echo; echo "== 8. the fleet on one page (versions, models, performance and history; one self-contained HTML file)"
$inv report --all --inventory "$inventory" --out /var/lib/rkdeploy-lab/demo/fleet.html || true
echo "Open it in any browser: xdg-open /var/lib/rkdeploy-lab/demo/fleet.html (or copy the file anywhere)"
echo
echo "check exit code: $code (0 all match; bit 2 mismatch, 4 unreachable, 8 failed). Stop the lab: $inv lab.down"
exit $code
