#!/usr/bin/env bash
# Engine throughput on the bundled PixelCNN, all in one run on one thread: the Rust engines
# (edgegen bench) and onnxruntime on the same f32 and QDQ ONNX files. Speed is reported as
# ratios against the int8 engine with reference kernels; nothing here is asserted.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-models/pixelcnn-fmnist}
N=${2:-50}
export RAYON_NUM_THREADS=1
cargo run --release --quiet --bin edgegen -- bench --model "$MODEL" --images "$N" | tee /tmp/edgegen-bench.txt
python3 - "$MODEL" "$N" <<'PY'
import sys, time, numpy as np, onnxruntime as ort
model, n = sys.argv[1], int(sys.argv[2])
rows = [l.rsplit(None, 2) for l in open("/tmp/edgegen-bench.txt").read().splitlines()[1:]]
base = float(rows[0][1])
rng = np.random.default_rng(0)
for name, path in [("log_prob onnxruntime f32", "model.onnx"), ("log_prob onnxruntime int8 (QDQ)", "model.int8.onnx")]:
    o = ort.SessionOptions(); o.intra_op_num_threads = 1; o.inter_op_num_threads = 1
    s = ort.InferenceSession(f"{model}/{path}", o, providers=["CPUExecutionProvider"])
    inp = s.get_inputs()[0]
    x = rng.integers(0, 256, (1, 1, 28, 28))
    x = (x - 128).astype(np.int8) if inp.type == "tensor(int8)" else (x / 127.5 - 1).astype(np.float32)
    s.run(None, {inp.name: x})
    t = time.perf_counter()
    for _ in range(n):
        s.run(None, {inp.name: x})
    r = n / (time.perf_counter() - t)
    print(f"{name:<40} {r:>12.2f} {r / base:>10.2f}")
PY
