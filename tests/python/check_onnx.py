"""Checks edgegen's ONNX files with the reference tools: the `onnx` checker (full_check) and
onnxruntime, which must reproduce the golden outputs the trainer wrote.

usage: python3 check_onnx.py MODEL_DIR [MODEL_DIR ...]
Each MODEL_DIR holds *.onnx files and golden/<stem>/test_data_set_N/{input_K,output_K}.pb.
Exit status 0 only when every file passes."""
import glob
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

TOLERANCE = 1e-4


def check_dir(model_dir):
    failures = 0
    checked = 0
    for path in sorted(glob.glob(os.path.join(model_dir, "*.onnx"))):
        stem = os.path.basename(path)[: -len(".onnx")]
        onnx.checker.check_model(onnx.load(path), full_check=True)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        if stem.endswith(".int8"):
            # The QDQ graph as written (DequantizeLinear -> float op -> QuantizeLinear), not
            # fused into onnxruntime's integer kernels: on x86 CPUs without AVX-512 VNNI those
            # multiply u8 x s8 pairs with VPMADDUBSW, whose int16 sums saturate, and move the
            # PixelCNN's outputs by 0.06-0.08 on average (measured with onnxruntime 1.31 and
            # 1.32 on an AVX2 machine; 0.02 with fusion off, as on VNNI machines).
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        sets = sorted(glob.glob(os.path.join(model_dir, "golden", stem, "test_data_set_*")))
        for d in sets:
            # Every input the graph names, from input_K.pb (a conditional discriminator also
            # reads its one-hot class).
            feeds = {
                x.name: numpy_helper.to_array(onnx.load_tensor(os.path.join(d, f"input_{k}.pb")))
                for k, x in enumerate(sess.get_inputs())
            }
            outs = sess.run(None, feeds)
            for k, got in enumerate(outs):
                want = numpy_helper.to_array(onnx.load_tensor(os.path.join(d, f"output_{k}.pb")))
                err = float(np.max(np.abs(got - want)))
                # Relative to the values' size: a log-likelihood summed over a whole image in
                # f32 (thousands of nats) carries its last bits' rounding.
                scale = max(1.0, float(np.max(np.abs(want)))) if want.size else 1.0
                if got.shape != want.shape or err > TOLERANCE * scale:
                    print(f"FAIL {path} {d} output_{k}: shape {got.shape} vs {want.shape}, max abs error {err:.3g}")
                    failures += 1
        if stem.endswith(".int8"):
            n, fail = check_int8_golden(sess, os.path.join(model_dir, "golden", "int8", stem[: -len(".int8")] + ".bin"))
            failures += fail
            sets = range(n)
        checked += 1
        print(f"ok   {path}: checker full_check passed, onnxruntime matches {len(sets)} golden sets")
    if checked == 0:
        print(f"FAIL {model_dir}: no .onnx files")
        failures += 1
    return failures


def check_int8_golden(sess, path):
    """Runs the QDQ model on the int8 golden inputs and compares with the int8 engine's
    outputs. onnxruntime computes QDQ in float and rounds half to even, the engine is exact
    integer arithmetic: an activation at a rounding boundary lands one step apart, and in a
    deep net such flips move the f32 outputs by a few hundredths on average (measured: 0.02
    on the PixelCNN's mixture parameters). A real mismatch (a wrong zero point, scale or
    layout) moves them by units, so: mean absolute difference < 0.05, maximum < 1."""
    if not os.path.exists(path):
        print(f"FAIL {path}: missing int8 golden vectors")
        return 0, 1
    blob = open(path, "rb").read()
    magic, (version, count, in_len, out_len) = blob[:4], np.frombuffer(blob[4:20], "<u4")
    assert magic == b"EGGV" and version == 1
    inp = sess.get_inputs()[0]
    fail = 0
    for s in range(count):
        at = 20 + s * (in_len + out_len)
        raw = blob[at : at + in_len]
        if inp.type == "tensor(int8)":
            x = (np.frombuffer(raw, np.uint8) ^ 0x80).astype(np.uint8).view(np.int8).reshape(inp.shape)
        else:
            x = np.frombuffer(raw, "<f4").reshape(inp.shape)
        got = np.concatenate([o.ravel() for o in sess.run(None, {inp.name: x})])
        want = np.frombuffer(blob[at + in_len : at + in_len + out_len], "<f4")
        diff = np.abs(got - want)
        if got.shape != want.shape or diff.mean() > 0.05 or diff.max() > 1.0:
            print(f"FAIL {path} set {s}: mean abs diff {diff.mean():.4g}, max {diff.max():.4g}")
            fail += 1
    return count, fail


def main():
    failures = sum(check_dir(d) for d in sys.argv[1:])
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
