#!/usr/bin/env bash
# Engine throughput of one bundled model (default: the PixelCNN; also models/vae-fmnist and
# models/gan-fmnist), all in one run on one thread: the Rust engines (edgegen bench),
# onnxruntime on the same f32 and QDQ ONNX files, and LiteRT (XNNPACK, one thread) on the
# int8 TFLite export of the same program (`edgegen export tflite`), when ai-edge-litert is
# installed. Speed is reported as ratios against the
# int8 engine with reference kernels doing the same thing; nothing here is asserted.
# Usage: scripts/bench.sh [MODEL_DIR] [IMAGES]
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-models/pixelcnn-fmnist}
N=${2:-50}
export RAYON_NUM_THREADS=1
cargo run --release --quiet --bin edgegen -- bench --model "$MODEL" --images "$N" | tee /tmp/edgegen-bench.txt
TFLITE=$(mktemp -d)
trap 'rm -rf "$TFLITE"' EXIT
cargo run --release --quiet --bin edgegen -- export tflite --model "$MODEL" --out "$TFLITE" >/dev/null
python3 - "$MODEL" "$N" "$TFLITE" <<'PY'
# onnxruntime on the same ONNX files and the same test images, one thread, doing the same
# work as the Rust engines: "forward only" is session.run alone; "log_prob" adds the mixture
# likelihood in numpy (the runtime's formula: log-sigmoids through log1p/exp and the
# cancellation-free bin probability; for the VAE the k = 16 importance-weighted bound);
# "sample" draws from seeded noise (and, for the VAE, every pixel from p(x|z)).
import sys, time, gzip, glob, json, numpy as np, onnxruntime as ort
model, n = sys.argv[1], int(sys.argv[2])
rows = [l.rsplit(None, 2) for l in open("/tmp/edgegen-bench.txt").read().splitlines()[1:]]
def base(name):
    # A generator has no likelihood: its network rows are measured against sampling.
    kind = "sample" if name.startswith("sample") or not any(r[0].startswith("log_prob") for r in rows) else "log_prob"
    same = [r for r in rows if r[0].startswith(kind)]
    return float(next((r for r in same if "reference" in r[0]), same[0])[1])
def report(name, rate):
    print(f"{name:<40} {rate:>12.2f} {rate / base(name):>10.2f}")
card = json.load(open(f"{model}/card.json"))
family = card["family"]
path = glob.glob("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte*")[0]
raw = gzip.open(path).read() if path.endswith(".gz") else open(path, "rb").read()
imgs = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28)[:n]
f32 = np.float32
rng = np.random.default_rng(0)

def session(file):
    o = ort.SessionOptions(); o.intra_op_num_threads = 1; o.inter_op_num_threads = 1
    return ort.InferenceSession(f"{model}/{file}", o, providers=["CPUExecutionProvider"])

def image_input(s, img):
    inp = s.get_inputs()[0]
    x = img.reshape(1, 1, 28, 28).astype(np.int32)
    return {inp.name: (x - 128).astype(np.int8) if inp.type == "tensor(int8)" else (x / 127.5 - 1).astype(f32)}

def rate(count, f):
    f(0)
    t = time.perf_counter()
    for i in range(count):
        f(i)
    return count / (time.perf_counter() - t)

def log_sigmoid(t):
    return np.minimum(t, f32(0)) - np.log1p(np.exp(-np.abs(t)))

def mixture_log_prob(x, params, k):
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

def mixture_sample(params, k):
    p = params.reshape(3 * k, -1)
    logits, mean, ls = p[:k], p[k:2 * k], np.maximum(p[2 * k:], f32(-7))
    j = np.argmax(logits - np.log(-np.log(rng.uniform(size=logits.shape))), axis=0)
    cols = np.arange(p.shape[1])
    u = rng.uniform(1e-6, 1 - 1e-6, size=p.shape[1])
    x = mean[j, cols] + np.exp(ls[j, cols]) * (np.log(u) - np.log1p(-u))
    return np.clip(np.rint((x + 1) * 127.5), 0, 255).astype(np.uint8)

for label, suffix in [("onnxruntime f32", ".onnx"), ("onnxruntime int8 (QDQ)", ".int8.onnx")]:
    if family == "pixelcnn":
        k = card["pixel_distribution"]["components"]
        s = session("model" + suffix)
        feeds = [image_input(s, im) for im in imgs]
        fwd = rate(n, lambda i: s.run(None, feeds[i]))
        totals = []
        lp = rate(n, lambda i: totals.append(mixture_log_prob(imgs[i], s.run(None, feeds[i])[0], k)))
        report(f"log_prob {label}", lp)
        report(f"forward only, {label}", fwd)
        # Sampling through onnxruntime: a full pass per pixel (784 per image), one image.
        def sample_pixelcnn(_):
            img = np.zeros((28, 28), np.uint8)
            for p in range(784):
                params = s.run(None, image_input(s, img))[0].reshape(3 * k, 784)[:, p]
                img.flat[p] = mixture_sample(params, k)[0]
            return img
        report(f"sample {label}, full pass/pixel", rate(1, sample_pixelcnn))
        print(f"  (mean bits/dim of those {n} images through {label}: {-np.mean(totals[1:]) / 784 / np.log(2):.4f})")
    elif family == "vae":
        k, latent, kk = card["pixel_distribution"]["components"], card["latent_dim"], 16
        enc, dec = session("encoder" + suffix), session("decoder" + suffix)
        zname = dec.get_inputs()[0].name
        def iwae(i):
            mu, lv = enc.run(None, image_input(enc, imgs[i]))[:2]
            w = []
            for _ in range(kk):
                eps = rng.standard_normal((1, latent)).astype(f32)
                z = mu + np.exp(0.5 * lv) * eps
                lp = mixture_log_prob(imgs[i], dec.run(None, {zname: z.astype(f32)})[0], k)
                w.append(lp - 0.5 * np.sum(z * z) + 0.5 * np.sum(eps * eps + lv))
            return np.logaddexp.reduce(np.array(w)) - np.log(kk)
        vals = []
        report(f"log_prob {label}", rate(max(1, n // 10), lambda i: vals.append(iwae(i))))
        report(f"sample {label}", rate(n, lambda i: mixture_sample(dec.run(None, {zname: rng.standard_normal((1, latent)).astype(f32)})[0], k)))
        print(f"  (mean importance-weighted bound through {label}: {-np.mean(vals[1:]) / 784 / np.log(2):.4f} bits/dim)")
    else:
        g = session("generator" + suffix)
        zname, latent = g.get_inputs()[0].name, card["latent_dim"]
        def sample(i):
            v = g.run(None, {zname: rng.standard_normal((1, latent)).astype(f32)})[0]
            return np.clip(np.rint((v + 1) * 127.5), 0, 255).astype(np.uint8)
        report(f"sample {label}", rate(n, sample))

# LiteRT on the int8 TFLite export: the same int8 program (XNNPACK delegate, one thread).
# Network rows are the file alone (its int8 layers and the float head); the PixelCNN's
# log_prob adds the same numpy likelihood as above.
try:
    from ai_edge_litert.interpreter import Interpreter
except ImportError:
    Interpreter = None
    print("(LiteRT rows skipped: pip install ai-edge-litert)")
if Interpreter is not None:
    tdir = sys.argv[3]
    def litert(part):
        it = Interpreter(model_path=f"{tdir}/{part}.tflite", num_threads=1)
        it.allocate_tensors()
        return it, it.get_input_details()[0], it.get_output_details()
    label = "LiteRT int8 (XNNPACK)"
    if family == "pixelcnn":
        k = card["pixel_distribution"]["components"]
        it, inp, outs = litert("model")
        xs = [(im.astype(np.int32) - 128).astype(np.int8).reshape(1, 28, 28, 1) for im in imgs]
        def fwd(i):
            it.set_tensor(inp["index"], xs[i]); it.invoke()
            return it.get_tensor(outs[0]["index"])
        totals = []
        lp = rate(n, lambda i: totals.append(mixture_log_prob(imgs[i], fwd(i)[0].reshape(784, -1).T.copy(), k)))
        fw = rate(n, fwd)
        report(f"log_prob {label}", lp)
        report(f"forward only, {label}", fw)
        for what, theirs in (("log_prob", lp), ("forward only,", fw)):
            ours = next(float(x[1]) for x in rows if x[0] == f"{what} int8 optimized kernels")
            print(f"  (the int8 engine's {what.rstrip(',')} against LiteRT's: {ours / theirs:.2f}x)")
        print(f"  (mean bits/dim of those {n} images through {label}: {-np.mean(totals[1:]) / 784 / np.log(2):.4f})")
    else:
        for part in (["encoder", "decoder"] if family == "vae" else ["generator"]):
            it, inp, outs = litert(part)
            shape = inp["shape"]
            if inp["dtype"] == np.int8:
                xs = [(im.astype(np.int32) - 128).astype(np.int8).reshape(shape) for im in imgs]
            else:
                xs = [rng.standard_normal(shape).astype(f32) for _ in range(n)]
            def run(i):
                it.set_tensor(inp["index"], xs[i]); it.invoke()
            r = rate(n, run)
            ours = next(float(x[1]) for x in rows if x[0] == f"forward only, {part}, int8 optimized kernels")
            report(f"forward only, {part}, {label}", r)
            print(f"  (the int8 engine's {part} against LiteRT's: {ours / r:.2f}x)")
PY
