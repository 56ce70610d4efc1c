#!/usr/bin/env bash
# Training throughput per burn backend on this machine: seconds per training step of the
# default PixelCNN and the default VAE (batch 32) on each device named (default: cpu and
# wgpu:cpu, i.e. burn's flex backend and Vulkan on Mesa's lavapipe through wgpu). Each device
# runs two sessions of the same run, --max-steps 3 then 13 more with --resume; the second
# session's wall time over its 13 steps is the figure (start-up, data loading and the first
# steps' warm-up are in the first). Builds edgegen with the features the devices need.
# Nothing is asserted. (With vulkan:cpu, lavapipe runs only the PixelCNN's kernels; see
# docs/gpu.md.)
# Usage: scripts/backend-bench.sh [DEVICE...]
set -euo pipefail
cd "$(dirname "$0")/.."
devices=("$@")
[ ${#devices[@]} -gt 0 ] || devices=(cpu wgpu:cpu)
features=()
for d in "${devices[@]}"; do
  case "${d%%:*}" in cpu) ;; vulkan|wgpu|cuda) features+=("${d%%:*}") ;; *) echo "unknown device $d" >&2; exit 2 ;; esac
done
feat=$(IFS=,; echo "${features[*]:-}")
cargo build --release --quiet --bin edgegen ${feat:+--features "$feat"}
bin="${CARGO_TARGET_DIR:-target}/release/edgegen"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '%-10s %-12s %12s %10s\n' family device "s per step" "steps/s"
for family in pixelcnn vae; do
  for d in "${devices[@]}"; do
    run="$work/$family-${d//:/-}"
    args=(train "$family" --limit 1024 --batch 32 --epochs 1 --seed 1 --run-dir "$run" --out "$run/out" --device "$d" --quiet)
    if ! "$bin" "${args[@]}" --max-steps 3 >"$run.log" 2>&1; then
      printf '%-10s %-12s %s\n' "$family" "$d" "failed: $(tail -1 "$run.log")"
      continue
    fi
    start=$(date +%s.%N)
    "$bin" "${args[@]}" --max-steps 13 --resume >/dev/null 2>&1
    end=$(date +%s.%N)
    python3 -c "import sys; s=(float(sys.argv[2])-float(sys.argv[1]))/13; print(f'%-10s %-12s %12.3f %10.2f' % (sys.argv[3], sys.argv[4], s, 1/s))" "$start" "$end" "$family" "$d"
  done
done
