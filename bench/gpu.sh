#!/usr/bin/env bash
# The GPU figures of README ("Training on a GPU") in one go, for a GPU machine that cannot build
# (no package registry): build the binaries where cargo works, carry target/gpu/ there, run.
#
#   bench/gpu.sh prepare          here: release trainer and GPU tests with the cuda feature,
#                                 stripped, into target/gpu/ (plus the kernels' PTX when NVRTC
#                                 is found, for a GPU machine without it)
#   bench/gpu.sh run [STAGE...]   there, from the repository root: what the machine has, then
#                                 the stages (default: all of them, in this order)
#       parity   the GPU tests (trainer/tests/cuda.rs)
#       bench    trainer bench, fc and conv, on the GPU and on all the CPU's cores
#       all      the no-argument run on the GPU into an empty runs/, timed; ALL_TIMEOUT=S
#                stops it after S seconds (the recipes finished by then are still reported)
#
# A GPU that cannot be opened stops the script at its first bench; failing GPU tests are
# reported and the other stages still run. Results go to $OUT (default target/gpu/out): what the
# machine has, the tests' log, one JSON line per bench, the whole run's log, time, summary and
# each finished recipe's wall time and test MSE.
#
# cudarc loads CUDA 12's names (libcublas.so.12) or the unversioned ones (libcublas.so). On a
# machine with only another major version (CUDA 13's libcublas.so.13, from the toolkit or from
# pip's nvidia packages), `run` links the unversioned names to it in target/gpu/lib.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/gpu
out=${OUT:-$bin/out}

prepare() {
    cargo build -p trainer --release --features cuda --locked
    local tests
    tests=$(cargo test -p trainer --release --features cuda --locked --test cuda --no-run --message-format=json |
        sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
    mkdir -p "$bin"
    cp target/release/trainer "$bin/trainer"
    cp "$tests" "$bin/cuda-tests"
    strip "$bin/trainer" "$bin/cuda-tests"
    # check.sh's NVRTC (CUDA 12.0: PTX every CUDA 12 driver loads) when no other is on the path.
    local nvrtc
    for nvrtc in "$PWD"/.venv-nvrtc/lib/python3*/site-packages/nvidia/cuda_nvrtc/lib; do
        if [ -d "$nvrtc" ]; then export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$nvrtc"; fi
    done
    if cargo run -q -p trainer --release --features cuda --locked --example cuda_ptx >"$bin/kernels.ptx" 2>/dev/null; then
        echo "kernels.ptx written (NVRTC found here)"
    else
        rm -f "$bin/kernels.ptx"
        echo "no NVRTC here: the GPU machine compiles the kernels itself"
    fi
    du -sh "$bin"
}

machine() {
    {
        echo "== date"; date -u
        echo "== GPU"; nvidia-smi || true
        echo "== CPU"; lscpu | grep -E 'Model name|^CPU\(s\)' || true
        echo "features (count of logical CPUs with each):"
        grep -o -w -E 'avx2|fma|avx512f|avx512_vnni' /proc/cpuinfo | sort | uniq -c || true
        echo "== CUDA libraries"
        ldconfig -p | grep -E 'libcuda\.so|libcublas\.so|libnvrtc\.so|libcudnn\.so' || echo "none in the loader's cache"
    } >"$out/machine.txt" 2>&1
    cat "$out/machine.txt"
}

# The first file named like $1 (a glob) under the usual CUDA places.
find_lib() {
    find /usr/local /usr/lib /opt -xdev -name "$1" 2>/dev/null | sort | head -n 1
}

# Makes cuBLAS and NVRTC loadable under cudarc's names where only another major version is
# installed (see the top of this file); without any NVRTC, the kernels' PTX from `prepare`.
cuda_libs() {
    local lib file cache link=$PWD/$bin/lib
    cache=$(ldconfig -p 2>/dev/null || true)
    mkdir -p "$link"
    for lib in cublas nvrtc; do
        if grep -q -E "lib$lib\.so(\.12)? " <<<"$cache"; then continue; fi
        file=$(find_lib "lib$lib.so.12*")
        [ -n "$file" ] || file=$(find_lib "lib$lib.so.1[3-9]")
        if [ -n "$file" ]; then
            ln -sf "$file" "$link/lib$lib.so"
            export LD_LIBRARY_PATH="$link:$(dirname "$file")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
            echo "lib$lib: $file (as $link/lib$lib.so)"
        elif [ "$lib" = nvrtc ] && [ -f "$bin/kernels.ptx" ]; then
            export TRAINER_CUDA_PTX=$PWD/$bin/kernels.ptx
            echo "no NVRTC: loading $TRAINER_CUDA_PTX"
        else
            echo "lib$lib: not found"
        fi
    done
    echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
}

run() {
    mkdir -p "$out"
    export MNIST_DIR=$PWD/data/mnist
    machine
    # In this shell (not a pipe's), so that its exports hold for the stages.
    cuda_libs >"$out/libs.txt"
    cat "$out/libs.txt"
    local stages=("$@")
    if [ ${#stages[@]} -eq 0 ]; then stages=(parity bench all); fi
    for stage in "${stages[@]}"; do
        case $stage in
            parity)
                "$bin/cuda-tests" --test-threads 1 2>&1 | tee "$out/parity.log" || echo "some GPU tests failed"
                ;;
            bench)
                for v in fc conv; do
                    "$bin/trainer" bench --variant "$v" --device cuda --epochs 5 | tee "$out/bench-$v-cuda.json"
                    "$bin/trainer" bench --variant "$v" --epochs 2 | tee "$out/bench-$v-cpu.json"
                done
                ;;
            all)
                rm -rf runs
                local t0 ms
                t0=$(date +%s%N)
                timeout "${ALL_TIMEOUT:-0}" "$bin/trainer" --device cuda >"$out/all.log" 2>&1 ||
                    echo "the run failed or was stopped (exit $?): $out/all.log"
                ms=$((($(date +%s%N) - t0) / 1000000))
                echo "whole run: $((ms / 1000)).$(printf %03d $((ms % 1000))) s" | tee "$out/all-time.txt"
                cp runs/summary.md "$out/summary.md" 2>/dev/null || true
                for m in runs/*/metrics.json; do
                    [ -f "$m" ] || continue
                    echo "$(dirname "$m"): $(grep -o -E '"(wall_seconds|test_mse|device)": *("[^"]*"|[0-9.e+-]+)' "$m" | tr '\n' ' ')"
                done | tee "$out/recipes.txt"
                tail -n 40 "$out/all.log"
                ;;
            *)
                echo "unknown stage '$stage': parity, bench or all" >&2
                exit 2
                ;;
        esac
    done
}

case "${1:-}" in
    prepare) prepare ;;
    run) shift; run "$@" ;;
    *)
        echo "usage: bench/gpu.sh prepare | run [parity|bench|all ...]" >&2
        exit 2
        ;;
esac
