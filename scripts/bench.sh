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
# onnxruntime on the same ONNX files and the same test images, one thread. "forward only" is
# session.run alone; "log_prob" adds the mixture likelihood in numpy (the runtime's formula:
# log-sigmoids through log1p/exp and the cancellation-free bin probability), so that row does
# the same work as the Rust engines' log_prob.
import sys, time, gzip, glob, numpy as np, onnxruntime as ort
model, n = sys.argv[1], int(sys.argv[2])
rows = [l.rsplit(None, 2) for l in open("/tmp/edgegen-bench.txt").read().splitlines()[1:]]
base = float(rows[0][1])
path = glob.glob("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte*")[0]
raw = gzip.open(path).read() if path.endswith(".gz") else open(path, "rb").read()
imgs = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28)[:n]
import json
k = json.load(open(f"{model}/card.json"))["pixel_distribution"]["components"]
f32 = np.float32

def log_sigmoid(t):
    return np.minimum(t, f32(0)) - np.log1p(np.exp(-np.abs(t)))

def log_prob(x, params):
    p = params.reshape(3 * k, -1)
    logits, mean, ls = p[:k], p[k:2 * k], np.maximum(p[2 * k:], f32(-7))
    xv = x.reshape(1, -1)
    c = xv.astype(f32) / f32(127.5) - f32(1) - mean
    inv_s = np.exp(-ls)
    plus, minus = inv_s * (c + f32(1 / 255)), inv_s * (c - f32(1 / 255))
    mid = log_sigmoid(plus) + log_sigmoid(-minus) + np.log(-np.expm1(minus - plus))
    comp = np.where(xv == 0, log_sigmoid(plus), np.where(xv == 255, log_sigmoid(-minus), mid))
    terms = comp + logits - np.logaddexp.reduce(logits, axis=0)
    return np.logaddexp.reduce(terms, axis=0).astype(np.float64).sum()

for name, path in [("onnxruntime f32", "model.onnx"), ("onnxruntime int8 (QDQ)", "model.int8.onnx")]:
    o = ort.SessionOptions(); o.intra_op_num_threads = 1; o.inter_op_num_threads = 1
    s = ort.InferenceSession(f"{model}/{path}", o, providers=["CPUExecutionProvider"])
    inp = s.get_inputs()[0]
    xs = [imgs[i].reshape(1, 1, 28, 28).astype(np.int32) for i in range(n)]
    xs = [(x - 128).astype(np.int8) if inp.type == "tensor(int8)" else (x / 127.5 - 1).astype(f32) for x in xs]
    s.run(None, {inp.name: xs[0]})
    t = time.perf_counter()
    for x in xs:
        s.run(None, {inp.name: x})
    fwd = n / (time.perf_counter() - t)
    t = time.perf_counter()
    total = 0.0
    for i, x in enumerate(xs):
        total += log_prob(imgs[i], s.run(None, {inp.name: x})[0])
    lp = n / (time.perf_counter() - t)
    print(f"{'log_prob ' + name:<40} {lp:>12.2f} {lp / base:>10.2f}")
    print(f"{'forward only, ' + name:<40} {fwd:>12.2f} {fwd / base:>10.2f}")
    print(f"  (mean bits/dim of those {n} images through {name}: {-total / n / 784 / np.log(2):.4f})")
PY
