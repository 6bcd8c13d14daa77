#!/usr/bin/env bash
# Every check of the project, locally and in CI: formatting, lints, the whole test suite (with
# the firmware under QEMU: needs qemu-system-arm; the C API's programs: gcc-arm-none-eabi), the
# GPU backend's build, the no_std core, the C library and the firmware built for Cortex-M, the
# docs, and the optional OpenBLAS backend when the system library is installed.
set -euo pipefail
cd "$(dirname "$0")"

step() { printf '\n==> %s\n' "$*"; }

step "Cortex-M targets named in rust-toolchain.toml"
# rustup adds a toolchain file's targets only when it installs the toolchain; one installed
# before (or without them) lacks them, and the firmware tests would fail deep inside a build.
targets=$(sed -n 's/^targets *= *\[\(.*\)\]/\1/p' rust-toolchain.toml | tr -d '",')
sysroot=$(rustc --print sysroot)
for target in $targets; do
    if [ -d "$sysroot/lib/rustlib/$target" ]; then
        continue
    fi
    if command -v rustup >/dev/null 2>&1; then
        rustup target add "$target"
    else
        echo "the Rust target $target is not installed and rustup is not here to add it:" >&2
        echo "install it for $(rustc --version), e.g. rustup target add $target" >&2
        exit 1
    fi
done

step "flip-link, the firmware's linker"
# firmware/.cargo/config.toml links the Cortex-M builds through flip-link, which puts the stack
# below the statics so that an overflow faults instead of overwriting them.
if ! command -v flip-link >/dev/null 2>&1; then
    cargo install flip-link --locked
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "Python environment for the TFLM and float-export tests (.venv-tflm)"
# TensorFlow Lite Micro's own interpreter, numpy and safetensors, at the versions pinned in
# tools/python/requirements.txt. Made once and reused while the pins are unchanged;
# TFLM_PYTHON names another interpreter that has them. The tests fail without it.
if [ -z "${TFLM_PYTHON:-}" ]; then
    venv=.venv-tflm
    if ! cmp -s tools/python/requirements.txt "$venv/requirements.txt" \
        || ! "$venv/bin/python" -c 'import tflite_micro, numpy, safetensors' 2>/dev/null; then
        if ! python3 -m venv --clear "$venv"; then
            echo "python3 -m venv failed: install Python 3 with venv (Debian: apt-get install python3-venv)" >&2
            exit 1
        fi
        "$venv/bin/pip" install --quiet --disable-pip-version-check -r tools/python/requirements.txt
        cp tools/python/requirements.txt "$venv/requirements.txt"
    fi
fi

step "tests"
cargo test --workspace --locked

step "GPU backend (the cuda feature): clippy, and the GPU tests built"
# CUDA is loaded at run time, so this builds with no CUDA toolkit and no GPU; the GPU tests
# (trainer/tests/cuda.rs) run on a machine with one (README, "Training on a GPU").
cargo clippy -p trainer --features cuda --all-targets --locked -- -D warnings
cargo test -p trainer --features cuda --locked --test cuda --no-run
# NVRTC runs without a GPU: the kernels are compiled by it here too (NVIDIA's wheel, pinned in
# tools/python/nvrtc.txt, in its own virtual environment, made once).
nvrtc_venv=.venv-nvrtc
if ! cmp -s tools/python/nvrtc.txt "$nvrtc_venv/requirements.txt"; then
    python3 -m venv --clear "$nvrtc_venv"
    "$nvrtc_venv/bin/pip" install --quiet --disable-pip-version-check -r tools/python/nvrtc.txt
    cp tools/python/nvrtc.txt "$nvrtc_venv/requirements.txt"
fi
nvrtc_lib=$(echo "$PWD/$nvrtc_venv"/lib/python3*/site-packages/nvidia/cuda_nvrtc/lib)
LD_LIBRARY_PATH="$nvrtc_lib" cargo test -p trainer --features cuda --locked --test cuda -- \
    --exact the_kernels_compile_with_nvrtc

step "no_std core for Cortex-M4F (DSP and portable kernels) and Cortex-M0"
cargo build -p autoencoder-core --locked --target thumbv7em-none-eabihf
cargo build -p autoencoder-core --locked --target thumbv7em-none-eabihf --features portable
cargo build -p autoencoder-core --locked --target thumbv6m-none-eabi

step "C API: libautoencoder.a for Cortex-M4F and Cortex-M0"
# The tests build it for the host and Cortex-M4F, check the header against cbindgen's and run
# the C programs (host-tests/tests/c_api.rs; gcc and Debian's gcc-arm-none-eabi).
cargo build -p core-c --locked --profile embedded --target thumbv7em-none-eabihf
cargo build -p core-c --locked --profile embedded --target thumbv6m-none-eabi

step "firmware for Cortex-M4F and Cortex-M0: fmt, clippy, QEMU and nRF52840-DK release builds"
# The firmware is its own workspace (firmware/.cargo/config.toml sets its target, the Cortex-M4F;
# the Cortex-M0 build, for QEMU's microbit, names thumbv6m-none-eabi), so cargo runs from its
# directory. It embeds the model named by AE_MODEL (default models/fc.aeq); without a
# shipped model, a synthetic one of the same shape stands in.
if [ -z "${AE_MODEL:-}" ] && [ ! -f models/fc.aeq ]; then
    cargo run -q -p host-tests --locked --bin synthetic-model -- fc target/firmware/synthetic/check.aeq
    export AE_MODEL=target/firmware/synthetic/check.aeq
fi
(
    cd firmware
    cargo fmt -- --check
    cargo clippy --release --locked -- -D warnings
    cargo clippy --release --locked --no-default-features --features board-nrf52840 -- -D warnings
    cargo clippy --release --locked --features portable -- -D warnings
    cargo clippy --release --locked --target thumbv6m-none-eabi -- -D warnings
    cargo build --release --locked
    cargo build --release --locked --no-default-features --features board-nrf52840
    cargo build --release --locked --target thumbv6m-none-eabi
)

step "docs (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked
RUSTDOCFLAGS="-D warnings" cargo doc -p trainer --features cuda --no-deps --locked

# The linker's own search decides (the backend links -lopenblas); `ldconfig -p | grep -q` would
# fail at random under pipefail, when grep's early exit kills ldconfig with SIGPIPE.
openblas=$(cc -print-file-name=libopenblas.so 2>/dev/null || true)
if [ "${openblas#/}" != "$openblas" ]; then
    step "OpenBLAS backend ($openblas)"
    cargo clippy -p trainer --features openblas --all-targets --locked -- -D warnings
    cargo test -p trainer --features openblas --locked --lib matmul
elif [ "${REQUIRE_OPENBLAS:-0}" = 1 ]; then
    echo "REQUIRE_OPENBLAS=1 but libopenblas is not installed" >&2
    exit 1
else
    step "OpenBLAS backend: skipped (apt-get install libopenblas-dev to check it)"
fi

printf '\nall checks passed\n'
