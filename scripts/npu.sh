#!/usr/bin/env bash
# The NPU path: exports the bundled Fashion-MNIST models as int8 TFLite (plain, and with
# --npu: int8 edges) and compiles every network with Vela for Ethos-U55-128, U55-256, U65-256 and U85-256; writes models/npu/
# (npu.json, npu.md, and the exported .tflite files). Installs Vela by pip when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-models/npu}"
command -v vela >/dev/null || python3 -m pip install --quiet ethos-u-vela==5.2.0 || python3 -m pip install --quiet --break-system-packages ethos-u-vela==5.2.0
dirs=()
for m in pixelcnn-fmnist vae-fmnist gan-fmnist; do
  cargo run --release --quiet --bin edgegen -- export tflite --model "models/$m" --out "$out/tflite/$m"
  cargo run --release --quiet --bin edgegen -- export tflite --model "models/$m" --npu --out "$out/tflite-npu/$m"
  dirs+=("$out/tflite/$m" "$out/tflite-npu/$m")
done
python3 scripts/npu.py --tflite "${dirs[@]}" --out "$out"
