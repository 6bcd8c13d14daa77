#!/usr/bin/env bash
# Builds the seed corpora of the fuzz targets, fuzz/seeds/TARGET (committed, a few KiB each),
# from the repository's files and, for model files and checkpoints, from tiny runs of the
# trainer. Runs read them beside the growing corpus fuzz/corpus/TARGET (ignored by git):
#
#   fuzz/seed.sh
#   cd fuzz && cargo +nightly fuzz run TARGET corpus/TARGET seeds/TARGET
#
# model:      small models exported from tiny training runs (dense, convolutional, with an
#             anomaly threshold); the shipped models/*.aeq (100 KiB to 2.8 MiB, slow to mutate)
#             are copied to corpus/model-shipped, for runs that pass that directory too.
# idx:        the first images and labels of MNIST's test files (plain and gzip), a float array.
# npy, npz:   small arrays of each element type and order, archives with and without a test split.
# csv:        tables with and without a header and a label column.
# spec:       trainer/specs/*.toml, `trainer spec fc`, the tiny runs' specs.
# checkpoint: the tiny runs' checkpoints.
#
# Needs python3 (standard library only) and builds the trainer (release) with the pinned
# toolchain. Set CARGO_TARGET_DIR to build elsewhere than target/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
seeds=$root/fuzz/seeds
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo build -q -p trainer --release
trainer="${CARGO_TARGET_DIR:-$root/target}/release/trainer"
for t in model idx npy npz csv spec checkpoint; do
    rm -rf "${seeds:?}/$t"
    mkdir -p "$seeds/$t"
done
mkdir -p fuzz/corpus/model-shipped

# Data files: slices of MNIST's IDX files, .npy, .npz and .csv made with Python's standard
# library (no numpy needed).
python3 - "$root" "$seeds" "$work" <<'PY'
import gzip, io, struct, sys, zipfile
root, seeds, work = sys.argv[1:4]

def put(target, name, data):
    with open(f"{seeds}/{target}/{name}", "wb") as f:
        f.write(data)

# IDX: a header with the count cut down and the first items.
with gzip.open(f"{root}/data/mnist/t10k-images-idx3-ubyte.gz") as f:
    f.read(16)
    pixels = f.read(3 * 784)
with gzip.open(f"{root}/data/mnist/t10k-labels-idx1-ubyte.gz") as f:
    f.read(8)
    labels = f.read(10)
images = struct.pack(">IIII", 0x803, 3, 28, 28) + pixels
label_file = struct.pack(">II", 0x801, 10) + labels
put("idx", "images3", images)
put("idx", "images3.gz", gzip.compress(images, mtime=0))
put("idx", "labels10", label_file)
put("idx", "labels10.gz", gzip.compress(label_file, mtime=0))
put("idx", "f32-2x3", struct.pack(">III", 0x0D02, 2, 3) + struct.pack(">6f", 0, 1.5, -2, 3, 4, 5))
put("idx", "i16-4", struct.pack(">II", 0x0B01, 4) + struct.pack(">4h", -1, 2, -300, 4))

# .npy: version 1.0 headers padded to 64 bytes, as numpy writes them.
def npy(descr, shape, data, fortran=False):
    shape_text = f"({shape[0]},)" if len(shape) == 1 else "(" + ", ".join(str(d) for d in shape) + ")"
    head = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape_text)
    pad = 64 - (10 + len(head) + 1) % 64
    head = head + " " * pad + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) + head.encode() + data

arrays = {
    "u8-3x2x2": npy("|u1", (3, 2, 2), bytes(range(12))),
    "f32-4x3": npy("<f4", (4, 3), struct.pack("<12f", *[i * 0.25 for i in range(12)])),
    "f64-fortran-2x3": npy("<f8", (2, 3), struct.pack("<6d", 1, 2, 3, 4, 5, 6), fortran=True),
    "i16-be-2": npy(">i2", (2,), struct.pack(">2h", -7, 300)),
    "i64-labels-4": npy("<i8", (4,), struct.pack("<4q", 0, 1, 1, 0)),
}
for name, data in arrays.items():
    put("npy", name + ".npy", data)

def npz(entries, method):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as z:
        for name, data in entries:
            z.writestr(zipfile.ZipInfo(name + ".npy", (1980, 1, 1, 0, 0, 0)), data, compress_type=method)
    return out.getvalue()

x = npy("<f4", (4, 3), struct.pack("<12f", *[i * 0.25 for i in range(12)]))
y = arrays["i64-labels-4"]
xt = npy("<f4", (2, 3), struct.pack("<6f", 1, 0, 1, 0, 1, 0))
yt = npy("<i8", (2,), struct.pack("<2q", 1, 0))
put("npz", "x.npz", npz([("x", x)], zipfile.ZIP_STORED))
put("npz", "xy-deflated.npz", npz([("x", x), ("y", y)], zipfile.ZIP_DEFLATED))
put("npz", "train-test.npz", npz([("x_train", x), ("y_train", y), ("x_test", xt), ("y_test", yt)], zipfile.ZIP_STORED))
put("npz", "u8-images.npz", npz([("x_train", arrays["u8-3x2x2"])], zipfile.ZIP_DEFLATED))

# The csv target's first byte picks the label column: 0 none, 1 the first by index, 2 `label`.
put("csv", "header-label.csv", b"\x02a,b,c,label\n0.5,1,2,0\n1.5,-2,3e-1,1\n4,5,6,0\n")
put("csv", "plain.csv", b"\x001,2,3\n4,5,6\n7,8,9\n")
put("csv", "index-label.csv", b"\x011,2,3\n0,5,6\n1,8,9\n")
put("csv", "quoted.csv", b'\x00"x","y"\n 0.25 , "1.5"\n-3,NaN\n')

# The tiny runs' data: points near the line y = 2x - 1, and 8x8 images of a moving bar.
with open(f"{work}/toy.csv", "w") as f:
    f.write("x,y\n")
    for i in range(240):
        xv = (i * 0.618034) % 1.0
        f.write(f"{xv},{2 * xv - 1 + 0.01 * ((i * 7919) % 101 / 101 - 0.5)}\n")
images = bytearray()
for i in range(96):
    for r in range(8):
        for c in range(8):
            images.append(255 if c == i % 8 or r == (i // 8) % 8 else 0)
with open(f"{work}/bars.npy", "wb") as f:
    f.write(npy("|u1", (96, 8, 8), bytes(images)))
PY

# Specs: the shipped ones, the built-in fc, and the tiny runs' (below).
cp trainer/specs/*.toml "$seeds/spec/"
"$trainer" spec fc > "$seeds/spec/fc-builtin.toml"

cat > "$work/toy.toml" <<'TOML'
name = "toy"
[encoder]
layers = [{ dense = 4 }, { dense = 1 }]
activation = "leaky_relu"
code_activation = "linear"
[decoder]
output_activation = "linear"
[schedule]
batch = 32
epochs = 1
TOML
cat > "$work/bars.toml" <<'TOML'
name = "bars"
[encoder]
layers = [{ conv = 2, kernel = 3 }, { max_pool = 2 }]
activation = "leaky_relu"
alpha = 0.01
[decoder]
layers = []
[schedule]
batch = 32
epochs = 1
TOML
cp "$work/toy.toml" "$work/bars.toml" "$seeds/spec/"

run() { # spec data name [export options...]
    local spec=$1 data=$2 name=$3
    shift 3
    "$trainer" train --spec "$spec" --data "$data" --out "$work/$name" --threads 1 >/dev/null
    "$trainer" export "$work/$name" --out "$work/$name.aeq" "$@" >/dev/null
    cp "$work/$name/checkpoint.bin" "$seeds/checkpoint/$name.bin"
    cp "$work/$name.aeq" "$seeds/model/$name.aeq"
}
run "$work/toy.toml" "$work/toy.csv" toy
run "$work/toy.toml" "$work/toy.csv" toy-threshold --threshold-fpr 0.05
run "$work/bars.toml" "$work/bars.npy" bars
cp models/*.aeq fuzz/corpus/model-shipped/

du -sh "$seeds"/* | sed "s|$root/||"
