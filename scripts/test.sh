#!/usr/bin/env bash
# The project's test command (README, .ci/run). Installs what the tests need on a fresh
# Debian machine, then runs every test. Safe to re-run: installs are skipped when present.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
step() { printf '\n== %s\n' "$*"; }

step "system packages"
need_apt=()
[ -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ] || need_apt+=(dataset-fashion-mnist)
command -v npm >/dev/null || need_apt+=(npm)
command -v qemu-system-arm >/dev/null || need_apt+=(qemu-system-arm)
command -v qemu-aarch64 >/dev/null || need_apt+=(qemu-user)
command -v aarch64-linux-gnu-gcc >/dev/null || need_apt+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v python3 >/dev/null || need_apt+=(python3 python3-pip)
# gcc for Cortex-M with newlib-nano: the C API's example firmware (capi/examples/guard), and
# libgcc's double-precision arithmetic, which the M4 firmware links (firmware/build.rs).
{ command -v arm-none-eabi-gcc >/dev/null && [ -d /usr/lib/arm-none-eabi/newlib ]; } || need_apt+=(gcc-arm-none-eabi libnewlib-arm-none-eabi)
command -v make >/dev/null || need_apt+=(make)
# Vulkan on the CPU (Mesa's lavapipe) and the Vulkan loader: training on burn's wgpu and
# vulkan backends.
{ [ -f /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ] && ldconfig -p | grep -q libvulkan.so.1; } || need_apt+=(mesa-vulkan-drivers libvulkan1)
# The text of eval ood's plots.
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need_apt+=(fonts-dejavu-core)
if [ ${#need_apt[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi
echo "ok"

step "rust targets"
rustup target add thumbv7em-none-eabihf thumbv8m.main-none-eabihf aarch64-unknown-linux-gnu >/dev/null
echo "ok"

step "defmt-print (decodes the firmware's log)"
command -v defmt-print >/dev/null || cargo install defmt-print --locked --quiet
defmt-print --version

step "python: onnx, onnxruntime (reference checker and runtime)"
if ! python3 -c "import onnx, onnxruntime, numpy" 2>/dev/null; then
  python3 -m pip install --quiet onnx onnxruntime numpy || python3 -m pip install --quiet --break-system-packages onnx onnxruntime numpy
fi
python3 -c "import onnx, onnxruntime; print('onnx', onnx.__version__, 'onnxruntime', onnxruntime.__version__)"

step "python: LiteRT, TFLite Micro and Vela (the TFLite export's cross-checks)"
if ! python3 -c "from ai_edge_litert.interpreter import Interpreter" 2>/dev/null || ! command -v vela >/dev/null \
  || ! python3 -c "from tflite_micro.python.tflite_micro import runtime" 2>/dev/null; then
  pkgs=(ai-edge-litert==2.3.0 ethos-u-vela==5.2.0 tflite-micro==0.dev20261023182759)
  python3 -m pip install --quiet "${pkgs[@]}" || python3 -m pip install --quiet --break-system-packages "${pkgs[@]}"
fi
vela --version

step "format and lints (rustfmt.toml; clippy warnings are errors)"
cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
cargo fmt --all --check
(cd firmware && cargo fmt --check)
cargo clippy --release --quiet --workspace --all-targets -- -D warnings
firmware_target="${CARGO_TARGET_DIR:-$PWD/target}/firmware"
for target in thumbv7em-none-eabihf thumbv8m.main-none-eabihf; do
  (cd firmware && CARGO_TARGET_DIR="$firmware_target" cargo clippy --release --quiet --target "$target" -- -D warnings)
  # The second use case's image (32x32 RGB slide tiles), in its own target directory.
  (cd firmware && CARGO_TARGET_DIR="$firmware_target-slide" cargo clippy --release --quiet --target "$target" --features slide -- -D warnings)
  # The image with classes: the VAE's Bayes classifier and the conditional GAN, with the flow (the
  # firmware test runs it).
  (cd firmware && CARGO_TARGET_DIR="$firmware_target-bayes-cgan-flow" cargo clippy --release --quiet --target "$target" --features bayes,cgan,flow -- -D warnings)
done
# The real boards' images (defmt-rtt, panic-probe): guard only on one, with generation on
# the other (the firmware test builds all four).
(cd firmware && CARGO_TARGET_DIR="$firmware_target-board-nucleo-l4r5zi" cargo clippy --release --quiet --target thumbv7em-none-eabihf --no-default-features --features nucleo-l4r5zi -- -D warnings)
(cd firmware && CARGO_TARGET_DIR="$firmware_target-board-alif-e7-hp-generate" cargo clippy --release --quiet --target thumbv8m.main-none-eabihf --no-default-features --features alif-e7-hp,generate -- -D warnings)
echo "ok"

step "datasets"
cargo run --release --quiet --bin edgegen -- data fetch

step "runtime without std, for Cortex-M4F and Cortex-M55"
for target in thumbv7em-none-eabihf thumbv8m.main-none-eabihf; do
  cargo build --release --quiet -p edgegen-runtime --no-default-features --target "$target"
  cargo build --release --quiet -p edgegen-runtime --no-default-features --features defmt --target "$target"
  echo "ok $target"
done
# SMLAD kernels: the M4 has DSP; a thumbv8m.main core only with it named (the firmware's
# .cargo/config.toml passes the same target-cpu).
cargo build --release --quiet -p edgegen-runtime --no-default-features --features defmt,dsp --target thumbv7em-none-eabihf
RUSTFLAGS="-C target-cpu=cortex-m55" cargo build --release --quiet -p edgegen-runtime --no-default-features --features defmt,dsp --target thumbv8m.main-none-eabihf
# Helium kernels: Armv8.1-M with MVE, the core named as for the DSP build.
RUSTFLAGS="-C target-cpu=cortex-m55" cargo build --release --quiet -p edgegen-runtime --no-default-features --features defmt,mve --target thumbv8m.main-none-eabihf
# Linted as built (the firmware's clippy lints only its own workspace; the dsp build is
# linted through the C API's below).
RUSTFLAGS="-C target-cpu=cortex-m55" cargo clippy --release --quiet -p edgegen-runtime --no-default-features --features defmt,mve --target thumbv8m.main-none-eabihf -- -D warnings
echo "ok dsp and helium kernels"
# The C API's static library (capi/) for the M4, linted as built there (its panic handler).
cargo clippy --release --quiet -p edgegen-capi --target thumbv7em-none-eabihf --features dsp -- -D warnings
echo "ok C API for thumbv7em-none-eabihf"

step "kernel tables: which instruction sets the kernel suite runs on this machine"
cargo test --release --quiet -p edgegen-runtime --lib kernels::tests::report -- --nocapture | grep "kernel suite"

step "tests: runtime, trainer, cross-checks, firmware in QEMU"
EDGEGEN_REQUIRE_PYTHON=1 EDGEGEN_REQUIRE_QEMU=1 cargo test --release --workspace

step "runtime tests on aarch64 Linux (cross-compiled, run under qemu-aarch64)"
cargo test --release -p edgegen-runtime --features onnx --target aarch64-unknown-linux-gnu

step "training on Vulkan: burn's wgpu backend on Mesa's lavapipe (feature wgpu; ~15 min to build the first time)"
# Its own target directory (kept by the build cache), so the default build's binaries stay as
# they are. Every family, and a step shared by the CPU and the GPU backend.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
wgpu_target="${CARGO_TARGET_DIR:-$PWD/target}/wgpu"
CARGO_TARGET_DIR="$wgpu_target" cargo clippy --release --quiet -p edgegen-trainer --features wgpu --all-targets -- -D warnings
CARGO_TARGET_DIR="$wgpu_target" cargo test --release -p edgegen-trainer --features wgpu --test backends -- --nocapture
# The `vulkan` feature (CubeCL's own SPIR-V compiler): lavapipe runs only the PixelCNN's
# kernels (docs/gpu.md). Another ~15 min build: run where it is cached, or when asked.
vulkan_target="${CARGO_TARGET_DIR:-$PWD/target}/vulkan"
if [ -d "$vulkan_target/release" ] || [ -n "${EDGEGEN_TEST_SPIRV:-}" ]; then
  step "training on Vulkan through CubeCL's SPIR-V compiler (feature vulkan), on lavapipe"
  CARGO_TARGET_DIR="$vulkan_target" cargo clippy --release --quiet -p edgegen-trainer --features vulkan --all-targets -- -D warnings
  CARGO_TARGET_DIR="$vulkan_target" cargo test --release -p edgegen-trainer --features vulkan --test backends -- --nocapture
else
  echo "skipped: the vulkan feature (CubeCL's SPIR-V compiler, ~15 min to build) is not in the build cache; EDGEGEN_TEST_SPIRV=1 builds and tests it"
fi
