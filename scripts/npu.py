"""Compiles exported int8 TFLite files with Vela for four Arm Ethos-U NPUs and reports, per
network: NPU cycles, inference time and inferences per second at the configuration's clock,
SRAM and flash use, and the operators Vela leaves on the CPU. Beside them: the same network's
Cortex-M4 and Cortex-M55 instruction counts from firmware/footprint.json (measured in QEMU by
the test command), and the guard's frames per second on each NPU.

    python3 scripts/npu.py --tflite DIR... --out models/npu

Each DIR is what `edgegen export tflite --model MODEL [--npu] --out DIR` wrote (tflite.json
and the .tflite files). Vela runs with its default system configuration and memory mode for each
accelerator (named in the report). Writes npu.json and npu.md to --out.
"""

import argparse
import csv
import glob
import json
import os
import re
import subprocess
import sys
import tempfile

ACCELERATORS = ["ethos-u55-128", "ethos-u55-256", "ethos-u65-256", "ethos-u85-256"]

# Which firmware figure is the same network's (instructions per inference, tests/tests/firmware.rs).
FIRMWARE = {
    ("pixelcnn-fmnist", "model"): "pixelcnn_log_prob",
}


def write_atomic(path, text):
    """Writes `text` to a temporary file beside `path`, then renames it over `path`."""
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def vela(tflite, accelerator, workdir):
    """Runs Vela on one file; returns its summary row and the operators left on the CPU."""
    out = os.path.join(workdir, accelerator)
    os.makedirs(out, exist_ok=True)
    run = subprocess.run(
        ["vela", "--accelerator-config", accelerator, "--output-dir", out, tflite],
        capture_output=True, text=True,
    )
    if run.returncode != 0:
        sys.exit(f"vela failed on {tflite} for {accelerator}:\n{run.stdout}\n{run.stderr}")
    summary = glob.glob(os.path.join(out, "*_summary_*.csv"))
    if not summary:
        sys.exit(f"vela wrote no summary for {tflite} ({accelerator})")
    row = next(csv.DictReader(open(summary[0])))
    cpu = re.findall(r"Warning \(supported operators\) operator: (\w+), ofm: '([^']*)'", run.stdout)
    return row, [f"{op} ({ofm})" for op, ofm in cpu]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tflite", nargs="+", required=True, help="directories written by `edgegen export tflite`")
    ap.add_argument("--out", required=True)
    ap.add_argument("--footprint", default="firmware/footprint.json")
    a = ap.parse_args()
    footprint = json.load(open(a.footprint)) if os.path.exists(a.footprint) else {}
    version = subprocess.run(["vela", "--version"], capture_output=True, text=True).stdout.strip()
    networks = []
    with tempfile.TemporaryDirectory() as work:
        for d in a.tflite:
            meta = json.load(open(os.path.join(d, "tflite.json")))
            for part, entry in meta["parts"].items():
                tflite = os.path.join(d, entry["file"])
                edges = "int8" if meta.get("edges", "").startswith("int8") else "float"
                n = {"model": meta["model"], "part": part, "edges": edges, "file": tflite, "tflite_bytes": entry["bytes"],
                     "operators": len(entry["ops"]), "npu": {}}
                key = FIRMWARE.get((meta["model"], part))
                for core in ("cortex_m4", "cortex_m55"):
                    if key and core in footprint:
                        n[f"{core}_instructions"] = footprint[core]["instructions"][key]
                for acc in ACCELERATORS:
                    row, cpu = vela(tflite, acc, os.path.join(work, f"{meta['model']}-{part}-{edges}"))
                    n["npu"][acc] = {
                        "system_config": row["system_config"],
                        "memory_mode": row["memory_mode"],
                        "clock_hz": float(row["core_clock"]),
                        "npu_cycles": int(float(row["cycles_npu"])),
                        "total_cycles": int(float(row["cycles_total"])),
                        "inference_ms": 1e3 * float(row["inference_time"]),
                        "inferences_per_second": float(row["inferences_per_second"]),
                        "sram_kib": float(row["sram_memory_used"]),
                        "off_chip_flash_kib": float(row["off_chip_flash_memory_used"]),
                        "dram_kib": float(row["dram_memory_used"]),
                        "cpu_operators": cpu,
                    }
                networks.append(n)
    # The guard: the PixelCNN's pass and the VAE encoder's, one after the other, from the
    # --npu export where there is one (what an NPU would run).
    guard = {}
    parts = {}
    for n in sorted(networks, key=lambda n: n["edges"] == "int8"):
        parts[(n["model"], n["part"])] = n
    guard_networks = [("pixelcnn-fmnist", "model"), ("vae-fmnist", "encoder"), ("vae-fmnist", "decoder")]
    if all(k in parts for k in guard_networks):
        for acc in ACCELERATORS:
            t = sum(parts[k]["npu"][acc]["inference_ms"] for k in guard_networks)
            guard[acc] = {"inference_ms": t, "frames_per_second": 1e3 / t}
        for core in ("cortex_m4", "cortex_m55"):
            if core in footprint:
                guard[f"{core}_instructions"] = footprint[core]["instructions"]["guard_per_frame"]
    report = {
        "command": "scripts/npu.sh",
        "vela": version,
        "note": "NPU figures are Vela's estimates (its performance model) for the whole file; operators Vela leaves on the CPU (the float heads after DEQUANTIZE) are not in them. Each network twice: the plain export (its f32 edges as float ops, as the engine computes them) and the --npu export (every edge int8 but the mixture heads: the encoder and the generator wholly on the NPU). Cortex-M figures are instructions counted in QEMU (firmware/footprint.json). The guard's NPU time is the evidence guard's networks (the PixelCNN pass, the VAE encoder and one VAE decoder pass; the background PixelCNN is not exported here); its statistics and heads run on the CPU.",
        "networks": networks,
        "guard": guard,
    }
    os.makedirs(a.out, exist_ok=True)
    write_atomic(os.path.join(a.out, "npu.json"), json.dumps(report, indent=2))
    lines = ["| network | export | NPU | system configuration | NPU cycles | ms | inferences/s | SRAM KiB | flash KiB | DRAM KiB | on the CPU |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for n in networks:
        export = "`--npu` (int8 edges)" if n["edges"] == "int8" else "plain (float edges)"
        for acc, r in n["npu"].items():
            lines.append(f"| {n['model']}/{n['part']} | {export} | {acc} | {r['system_config']} ({r['clock_hz']/1e6:.0f} MHz) | {r['npu_cycles']:,} | "
                         f"{r['inference_ms']:.3f} | {r['inferences_per_second']:.0f} | {r['sram_kib']:.1f} | {r['off_chip_flash_kib']:.1f} | {r['dram_kib']:.1f} | "
                         f"{', '.join(r['cpu_operators']) or 'none'} |")
    if guard:
        lines += ["", "| evidence guard (PixelCNN + VAE encoder + VAE decoder) | per frame | frames/s |", "|---|---:|---:|"]
        for acc in ACCELERATORS:
            lines.append(f"| {acc} (Vela estimate, networks only) | {guard[acc]['inference_ms']:.3f} ms | {guard[acc]['frames_per_second']:.0f} |")
        for core, name in (("cortex_m4", "Cortex-M4F (QEMU mps2-an386)"), ("cortex_m55", "Cortex-M55 (QEMU mps3-an547)")):
            if f"{core}_instructions" in guard:
                lines.append(f"| {name}, whole guard | {guard[f'{core}_instructions'] / 1e6:.1f} M instructions | - |")
    write_atomic(os.path.join(a.out, "npu.md"), "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
