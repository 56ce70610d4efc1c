"""Checks edgegen's ONNX files with the reference tools: the `onnx` checker (full_check) and
onnxruntime, which must reproduce the golden outputs the trainer wrote.

usage: python3 check_onnx.py MODEL_DIR [MODEL_DIR ...]
Each MODEL_DIR holds *.onnx files and golden/<stem>/test_data_set_N/{input_0,output_K}.pb.
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
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        sets = sorted(glob.glob(os.path.join(model_dir, "golden", stem, "test_data_set_*")))
        for d in sets:
            inp = numpy_helper.to_array(onnx.load_tensor(os.path.join(d, "input_0.pb")))
            outs = sess.run(None, {sess.get_inputs()[0].name: inp})
            for k, got in enumerate(outs):
                want = numpy_helper.to_array(onnx.load_tensor(os.path.join(d, f"output_{k}.pb")))
                err = float(np.max(np.abs(got - want)))
                if got.shape != want.shape or err > TOLERANCE:
                    print(f"FAIL {path} {d} output_{k}: shape {got.shape} vs {want.shape}, max abs error {err:.3g}")
                    failures += 1
        checked += 1
        print(f"ok   {path}: checker full_check passed, onnxruntime matches {len(sets)} golden sets")
    if checked == 0:
        print(f"FAIL {model_dir}: no .onnx files")
        failures += 1
    return failures


def main():
    failures = sum(check_dir(d) for d in sys.argv[1:])
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
