"""Runs an exported int8 TFLite file with LiteRT and compares it with edgegen's int8 engine.

    python3 check_tflite.py MODEL.tflite CASES_DIR

CASES_DIR holds meta.json ({"input": i, "tensors": [{"dtype", "dims", "rank"}], "cases": n,
"outputs": [i, ...]}) and case_K/t{i}.bin: every tensor of the engine's program for case K
(planar C, H, W; int8 or little-endian f32), the input among them. The file's tensor i is the
program's tensor i in NHWC.

A file exported with `--npu` has int8 edges where the engine has float32 ones (a latent
input, `mu`/`logvar`, the generator's pre-tanh and tanh images): its input is set from the
engine's int8 tensor at the file's input index, and each such edge is compared dequantized
against the engine's float values clipped to the edge's int8 range ("edges": the largest
difference in the file tensor's quantization steps, and for a tanh image in pixel levels,
rint((v + 1)·127.5)).

Three LiteRT configurations: the reference kernels (every tensor kept, so every int8 tensor
of the program is compared), the optimized builtin kernels, and the default XNNPACK delegate
(graph outputs only: a delegate keeps its intermediate tensors); and, when the `tflite-micro`
package is installed, TensorFlow Lite Micro's own interpreter ("tflm", every tensor kept). Prints one JSON report:
per configuration, int8 tensors compared, values differing, the largest difference in
quantization steps and where; the float outputs' largest relative difference.
"""

import json
import os
import sys

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType


def engine_tensor(path, t):
    raw = open(path, "rb").read()
    a = np.frombuffer(raw, dtype=np.int8 if t["dtype"] == "int8" else "<f4")
    if t["rank"] == 3:
        c, h, w = t["dims"]
        return a.reshape(c, h, w).transpose(1, 2, 0)[None]
    return a.reshape(1, -1)


class TflmAsLiteRT:
    """TFLite Micro's Python interpreter behind the few LiteRT calls used here."""

    def __init__(self, tflm, model, litert):
        self.it = tflm.Interpreter.from_file(model, arena_size=16 << 20,
                                             intrepreter_config=tflm.InterpreterConfig.kPreserveAllTensors)
        litert.allocate_tensors()
        self.litert = litert

    def get_output_details(self):
        return self.litert.get_output_details()

    def get_input_details(self):
        return self.litert.get_input_details()

    def get_tensor_details(self):
        return self.litert.get_tensor_details()

    def set_tensor(self, index, x):
        assert index == self.get_input_details()[0]["index"]
        self.it.set_input(x, 0)

    def invoke(self):
        self.it.invoke()

    def get_tensor(self, i):
        shape = self.litert.get_tensor_details()[i]["shape"]
        return np.asarray(self.it.GetTensor(i, 0)["tensor_data"]).reshape(shape)


def main():
    model, cases_dir = sys.argv[1], sys.argv[2]
    meta = json.load(open(os.path.join(cases_dir, "meta.json")))
    tensors = meta["tensors"]
    configs = {
        "reference": dict(experimental_op_resolver_type=OpResolverType.BUILTIN_REF, experimental_preserve_all_tensors=True),
        "builtin": dict(experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES, experimental_preserve_all_tensors=True),
        "xnnpack": dict(experimental_op_resolver_type=OpResolverType.BUILTIN),
    }
    try:
        from tflite_micro.python.tflite_micro import runtime as tflm
    except ImportError:
        tflm = None
    if tflm is not None:
        configs["tflm"] = "tflm"
    report = {}
    for name, kwargs in configs.items():
        if kwargs == "tflm":
            # TensorFlow Lite Micro's own interpreter (its reference kernels), every tensor kept;
            # names, quantization and graph outputs from the same file through LiteRT.
            it = TflmAsLiteRT(tflm, model, Interpreter(model_path=model))
            kwargs = {"experimental_preserve_all_tensors": True}
        else:
            it = Interpreter(model_path=model, **kwargs)
            it.allocate_tensors()
        outputs = [d["index"] for d in it.get_output_details()]
        keep_all = kwargs.get("experimental_preserve_all_tensors", False)
        details = it.get_tensor_details()
        inp = it.get_input_details()[0]["index"]
        compared = [i for i in range(len(tensors)) if i not in (meta["input"], inp) and (keep_all or i in outputs)]
        edges = {}
        by_tensor = {}
        r = {"int8_tensors": 0, "int8_values": 0, "int8_differing": 0, "int8_max_steps": 0, "worst": None,
             "float_outputs": 0, "float_max_rel": 0.0}
        for k in range(meta["cases"]):
            case = os.path.join(cases_dir, f"case_{k}")
            x = engine_tensor(os.path.join(case, f"t{inp}.bin"), tensors[inp])
            it.set_tensor(inp, x)
            it.invoke()
            for i in compared:
                t = tensors[i]
                want = engine_tensor(os.path.join(case, f"t{i}.bin"), t)
                got = it.get_tensor(i)
                if got.shape != want.shape:
                    raise SystemExit(f"tensor {i}: LiteRT shape {got.shape}, engine {want.shape}")
                if t["dtype"] == "float32" and got.dtype == np.int8:
                    # An int8 edge of an --npu file against the engine's float value.
                    scale, zp = details[i]["quantization"]
                    v = (got.astype(np.float64) - zp) * scale
                    # Values past the int8 range saturate by design (TANH's input at ±3).
                    clipped = np.clip(want.astype(np.float64), (-128 - zp) * scale, (127 - zp) * scale)
                    e = edges.setdefault(details[i]["name"], {"max_steps": 0.0, "max_abs": 0.0})
                    e["max_steps"] = max(e["max_steps"], float(np.abs(v - clipped).max() / scale))
                    e["max_abs"] = max(e["max_abs"], float(np.abs(v - clipped).max()))
                    if abs(scale - 1 / 128) < 1e-12 and zp == 0:
                        px = lambda a: np.clip(np.rint((a + 1) * 127.5), 0, 255)
                        d = np.abs(px(v) - px(want.astype(np.float64)))
                        e["max_pixel_levels"] = max(e.get("max_pixel_levels", 0), int(d.max()))
                        e["mean_pixel_levels"] = e.get("mean_pixel_levels", 0) + float(d.mean()) / meta["cases"]
                elif t["dtype"] == "int8":
                    d = np.abs(got.astype(np.int32) - want.astype(np.int32))
                    r["int8_tensors"] += 1
                    r["int8_values"] += d.size
                    r["int8_differing"] += int((d > 0).sum())
                    if (d > 0).any():
                        key = f"{i}:{it.get_tensor_details()[i]['name']}"
                        by_tensor[key] = max(by_tensor.get(key, 0), int(d.max()))
                    if int(d.max()) > r["int8_max_steps"]:
                        r["int8_max_steps"] = int(d.max())
                        r["worst"] = {"case": k, "tensor": i, "name": it.get_tensor_details()[i]["name"]}
                elif i in outputs:
                    scale = max(float(np.abs(want).max()), 1e-6)
                    r["float_outputs"] += 1
                    r["float_max_rel"] = max(r["float_max_rel"], float(np.abs(got - want).max()) / scale)
        r["differing_tensors"] = dict(sorted(by_tensor.items(), key=lambda kv: int(kv[0].split(":")[0]))[:6])
        if edges:
            r["edges"] = edges
        report[name] = r
    print(json.dumps(report))


if __name__ == "__main__":
    main()
