"""Traces where a QDQ ONNX file and edgegen's int8 engine part, tensor by tensor.

    python3 trace_qdq.py MODEL.int8.onnx CASES_DIR

CASES_DIR is what tests/tests/tflite.rs writes (meta.json and case_K/t{i}.bin: every tensor of
the engine's program, planar). The QDQ file names program tensor i's int8 value `t{i}_q` (its
QuantizeLinear output); onnxruntime runs the file with every such value as an extra output.
Prints one JSON report: per int8 tensor in program order, values differing from the engine's
and the largest difference in steps, summed over the cases.
"""

import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort


def main():
    model_path, cases_dir = sys.argv[1], sys.argv[2]
    meta = json.load(open(os.path.join(cases_dir, "meta.json")))
    tensors = meta["tensors"]
    m = onnx.load(model_path)
    produced = {o for n in m.graph.node for o in n.output}
    traced = [i for i, t in enumerate(tensors) if t["dtype"] == "int8" and f"t{i}_q" in produced]
    for i in traced:
        m.graph.output.append(onnx.helper.make_tensor_value_info(f"t{i}_q", onnx.TensorProto.INT8, None))
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    report = {i: {"differing": 0, "values": 0, "max_steps": 0} for i in traced}
    for k in range(meta["cases"]):
        case = os.path.join(cases_dir, f"case_{k}")
        t_in = tensors[meta["input"]]
        raw = open(os.path.join(case, f"t{meta['input']}.bin"), "rb").read()
        x = np.frombuffer(raw, dtype=np.int8 if t_in["dtype"] == "int8" else "<f4")
        x = x.reshape([1] + t_in["dims"][: t_in["rank"]])
        outs = sess.run([f"t{i}_q" for i in traced], {inp.name: x})
        for i, got in zip(traced, outs):
            want = np.frombuffer(open(os.path.join(case, f"t{i}.bin"), "rb").read(), np.int8)
            d = np.abs(got.ravel().astype(np.int32) - want.astype(np.int32))
            r = report[i]
            r["differing"] += int((d > 0).sum())
            r["values"] += d.size
            r["max_steps"] = max(r["max_steps"], int(d.max()))
    print(json.dumps({f"t{i}": r for i, r in report.items()}))


if __name__ == "__main__":
    main()
