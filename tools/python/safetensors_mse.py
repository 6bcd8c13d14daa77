#!/usr/bin/env python3
"""Clean-input test MSE of `trainer export --safetensors` files, replayed in numpy.

Each file's forward pass is rebuilt from its metadata alone (the `layers` JSON, `input_shape`,
`input_scaling`; format "trainer-autoencoder-safetensors/1", see
trainer/src/safetensors_export.rs): linear, conv2d, maxpool2d, leaky_relu, sigmoid, top_k (ties
to the lower index, as the trainer's layers), lifetime_top_k (the identity at inference),
flatten and unflatten. The first N MNIST test images go through it and the mean squared error
of the output against the input, over every pixel of every image, is printed as one JSON object
per file, one per line.

    safetensors_mse.py FILE [FILE ...] [--count N] [--images t10k-images-idx3-ubyte.gz]
                       [--dtype float32|float64]

float32 (the default) computes as the trainer does; float64 gives the same figure to about
1e-6. Exits non-zero, naming the file, on anything it does not understand.
"""

import argparse
import gzip
import json
import sys
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file

FORMAT = "trainer-autoencoder-safetensors/1"
INPUT_SCALING = "pixels / 255"
DEFAULT_IMAGES = Path(__file__).resolve().parents[2] / "data/mnist/t10k-images-idx3-ubyte.gz"
# Images per forward pass: bounds the memory of the convolutions' windows.
BATCH = 128


class FormatError(Exception):
    """The file is not one this script can replay."""


def load_images(path, count):
    """The first `count` images of an IDX3 file (gzip or not): (count, rows·cols) uint8."""
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    magic, n, rows, cols = np.frombuffer(raw[:16], dtype=">u4")
    if magic != 2051:
        raise FormatError(f"{path}: not an IDX3 image file (magic {magic})")
    if count is None:
        count = int(n)
    if count > n:
        raise FormatError(f"{path}: {count} images asked for, it holds {n}")
    pixels = np.frombuffer(raw, dtype=np.uint8, count=count * rows * cols, offset=16)
    return pixels.reshape(count, rows * cols)


def linear(x, w, b):
    # x: (N, in), w: (out, in), b: (out) -> (N, out)
    return x @ w.T + b


def conv2d(x, w, b, stride, padding):
    # x: (N, C, H, W), w: (O, C, kH, kW), b: (O) -> (N, O, OH, OW)
    if padding != [0, 0]:
        x = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    kh, kw = w.shape[2:]
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
    windows = windows[:, :, :: stride[0], :: stride[1]]
    # windows: (N, C, OH, OW, kH, kW); sum over C, kH, kW.
    y = np.tensordot(windows, w, axes=([1, 4, 5], [1, 2, 3]))
    return y.transpose(0, 3, 1, 2) + b[None, :, None, None]


def maxpool2d(x, kernel, stride):
    # x: (N, C, H, W) -> (N, C, H // 2, W // 2); a trailing odd row or column is dropped.
    if kernel != [2, 2] or stride != [2, 2]:
        raise FormatError(f"maxpool2d with kernel {kernel}, stride {stride}")
    n, c, h, w = x.shape
    oh, ow = h // 2, w // 2
    return x[:, :, : 2 * oh, : 2 * ow].reshape(n, c, oh, 2, ow, 2).max(axis=(3, 5))


def top_k(x, k):
    # Per sample, over its values in flattened order: keep the k largest, zero the rest; equal
    # values go to the lower index (a stable sort of the negated values).
    flat = x.reshape(x.shape[0], -1)
    if k >= flat.shape[1]:
        return x
    order = np.argsort(-flat, axis=1, kind="stable")
    mask = np.zeros(flat.shape, dtype=bool)
    np.put_along_axis(mask, order[:, :k], True, axis=1)
    return np.where(mask, flat, flat.dtype.type(0)).reshape(x.shape)


def forward(layers, tensors, x, dtype):
    """Runs `layers` on the batch `x` (N, *input_shape)."""
    t = lambda name: tensors[name]  # noqa: E731
    for step in layers:
        kind = step["kind"]
        if kind == "linear":
            x = linear(x, t(step["weight"]), t(step["bias"]))
        elif kind == "conv2d":
            x = conv2d(x, t(step["weight"]), t(step["bias"]), step["stride"], step["padding"])
        elif kind == "maxpool2d":
            x = maxpool2d(x, step["kernel"], step["stride"])
        elif kind == "leaky_relu":
            slope = dtype(step["slope"])
            x = np.where(x > 0, x, slope * x)
        elif kind == "sigmoid":
            x = dtype(1) / (dtype(1) + np.exp(-x))
        elif kind == "top_k":
            if step.get("ties") != "lower_index":
                raise FormatError(f"{step['module']}: top_k ties {step.get('ties')!r}")
            x = top_k(x, step["k"])
        elif kind == "lifetime_top_k" or kind == "identity":
            if kind == "lifetime_top_k" and step.get("inference") != "identity":
                raise FormatError(f"{step['module']}: lifetime_top_k at inference {step.get('inference')!r}")
        elif kind == "flatten":
            if step["layout"] != "NCHW" or list(x.shape[1:]) != step["in_shape"]:
                raise FormatError(f"{step['module']}: flatten of {list(x.shape[1:])}")
            x = x.reshape(x.shape[0], -1)
        elif kind == "unflatten":
            if step["layout"] != "NCHW" or x.shape[1:] != (step["in_features"],):
                raise FormatError(f"{step['module']}: unflatten of {list(x.shape[1:])}")
            x = x.reshape(x.shape[0], *step["out_shape"])
        else:
            raise FormatError(f"{step['module']}: unknown layer kind {kind!r}")
        if x.dtype != dtype:
            raise FormatError(f"{step['module']}: {kind} computed in {x.dtype}, not {np.dtype(dtype)}")
    return x


def check_shapes(layers, tensors):
    """Every tensor a layer names is there with the shape the layer states."""
    for step in layers:
        kind = step["kind"]
        if kind == "linear":
            want = {step["weight"]: (step["out_features"], step["in_features"]), step["bias"]: (step["out_features"],)}
        elif kind == "conv2d":
            o, c = step["out_channels"], step["in_channels"]
            want = {step["weight"]: (o, c, *step["kernel"]), step["bias"]: (o,)}
        else:
            continue
        for name, shape in want.items():
            if name not in tensors:
                raise FormatError(f"{step['module']}: no tensor {name}")
            if tensors[name].shape != shape:
                raise FormatError(f"{name}: shape {tensors[name].shape}, the layer says {shape}")


def test_mse(path, pixels, dtype):
    """The file's clean-input MSE on `pixels` (N, 784) uint8, and its metadata."""
    with safe_open(path, framework="numpy") as f:
        meta = f.metadata() or {}
    if meta.get("format") != FORMAT:
        raise FormatError(f"format {meta.get('format')!r}, this script reads {FORMAT!r}")
    if meta.get("input_scaling") != INPUT_SCALING:
        raise FormatError(f"input scaling {meta.get('input_scaling')!r}")
    layers = json.loads(meta["layers"])
    input_shape = json.loads(meta["input_shape"])
    tensors = load_file(path)
    for name, value in tensors.items():
        if value.dtype != np.float32:
            raise FormatError(f"{name}: {value.dtype}, not float32")
    check_shapes(layers, tensors)
    tensors = {name: value.astype(dtype) for name, value in tensors.items()}
    if int(np.prod(input_shape)) != pixels.shape[1]:
        raise FormatError(f"input shape {input_shape} does not take {pixels.shape[1]} pixels")
    sse = 0.0
    for start in range(0, len(pixels), BATCH):
        batch = pixels[start : start + BATCH]
        x = batch.astype(dtype) / dtype(255)
        y = forward(layers, tensors, x.reshape(len(batch), *input_shape), dtype)
        e = y.reshape(len(batch), -1).astype(np.float64) - x.astype(np.float64)
        sse += float(np.sum(e * e))
    return sse / pixels.size, meta


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="+", type=Path, help=".safetensors files from trainer export --safetensors")
    p.add_argument("--count", "-n", type=int, default=None, help="first N test images [default: all]")
    p.add_argument("--images", type=Path, default=DEFAULT_IMAGES, help="MNIST test images, IDX3 (gzip or not)")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    args = p.parse_args()
    dtype = np.float32 if args.dtype == "float32" else np.float64
    try:
        pixels = load_images(args.images, args.count)
    except (OSError, FormatError) as e:
        sys.exit(f"error: {e}")
    for path in args.files:
        try:
            mse, meta = test_mse(str(path), pixels, dtype)
        except (OSError, FormatError, KeyError, ValueError) as e:
            sys.exit(f"error: {path}: {type(e).__name__}: {e}")
        result = {
            "file": str(path),
            "variant": meta.get("variant"),
            "format": meta["format"],
            "images": len(pixels),
            "dtype": args.dtype,
            "test_mse": mse,
        }
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
