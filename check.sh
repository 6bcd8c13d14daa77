#!/usr/bin/env bash
# Every check of the project, locally and in CI: formatting, lints, the whole test suite, the
# no_std core built for Cortex-M, the docs, and the optional OpenBLAS backend when the system
# library is installed.
set -euo pipefail
cd "$(dirname "$0")"

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "tests"
cargo test --workspace --locked

step "no_std core for Cortex-M4F and Cortex-M0"
cargo build -p autoencoder-core --locked --target thumbv7em-none-eabihf
cargo build -p autoencoder-core --locked --target thumbv6m-none-eabi

step "docs (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

if ldconfig -p 2>/dev/null | grep -q 'libopenblas\.so'; then
    step "OpenBLAS backend"
    cargo clippy -p trainer --features openblas --all-targets --locked -- -D warnings
    cargo test -p trainer --features openblas --locked --lib matmul
elif [ "${REQUIRE_OPENBLAS:-0}" = 1 ]; then
    echo "REQUIRE_OPENBLAS=1 but libopenblas is not installed" >&2
    exit 1
else
    step "OpenBLAS backend: skipped (apt-get install libopenblas-dev to check it)"
fi

printf '\nall checks passed\n'
