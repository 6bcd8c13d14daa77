#!/usr/bin/env python3
"""PyTorch's training epoch for the trainer's `fc` and `conv` recipes, to time beside
`trainer bench`.

The same work as one timed epoch of `trainer bench --variant fc|conv`: the 60,000 MNIST training
images scaled to [0, 1] and held as one tensor (no DataLoader), shuffled, batches of 512, MSE
loss, Adam (lr 1e-3), the first phase of each recipe:

- fc: Linear(784, 64) + LeakyReLU(0.01), then the tied decoder (the encoder's weight
  transposed, its own bias) + LeakyReLU(0.01);
- conv: four Conv2d(8 channels, 6x6, stride 1, no padding) + LeakyReLU(0.01), MaxPool2d(2) to
  8x4x4 = 128 codes, Linear(128, 784) + LeakyReLU(0.01).

Prints one JSON line: the median and fastest epoch in seconds, the threads, PyTorch's version and
the CPU capability it runs (cap it like the trainer's TRAINER_SIMD with
ATEN_CPU_CAPABILITY=avx2 and ONEDNN_MAX_CPU_ISA=AVX2).

    python bench/torch_epoch.py --net conv --epochs 3 --threads 2

Needs torch and numpy (a virtual environment outside the repository: pip install torch numpy).
"""

import argparse
import gzip
import json
import pathlib
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

ROOT = pathlib.Path(__file__).resolve().parent.parent


def mnist_train_images() -> torch.Tensor:
    """The 60,000 training images as one (60000, 1, 28, 28) float tensor in [0, 1]."""
    raw = gzip.open(ROOT / "data/mnist/train-images-idx3-ubyte.gz").read()
    pixels = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(-1, 1, 28, 28)
    return torch.from_numpy(pixels.astype(np.float32) / 255.0)


class Fc(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = torch.nn.Linear(784, 64)
        self.decoder_bias = torch.nn.Parameter(torch.zeros(784))

    def forward(self, x):
        code = F.leaky_relu(self.encoder(x.flatten(1)), 0.01)
        return F.leaky_relu(F.linear(code, self.encoder.weight.t(), self.decoder_bias), 0.01)


class Conv(torch.nn.Module):
    def __init__(self):
        super().__init__()
        channels = [1, 8, 8, 8, 8]
        self.convs = torch.nn.ModuleList(
            torch.nn.Conv2d(a, b, kernel_size=6) for a, b in zip(channels, channels[1:])
        )
        self.decoder = torch.nn.Linear(128, 784)

    def forward(self, x):
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.01)
        code = F.max_pool2d(x, 2).flatten(1)
        return F.leaky_relu(self.decoder(code), 0.01)


def epoch(model, optimizer, images, batch_size):
    order = torch.randperm(images.shape[0])
    for start in range(0, images.shape[0], batch_size):
        batch = images[order[start : start + batch_size]]
        optimizer.zero_grad(set_to_none=True)
        out = model(batch)
        loss = F.mse_loss(out, batch.flatten(1))
        loss.backward()
        optimizer.step()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--net", choices=["fc", "conv"], default="fc")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs, after one warm-up")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=512)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    images = mnist_train_images()
    model = Fc() if args.net == "fc" else Conv()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    epoch(model, optimizer, images, args.batch_size)  # warm-up
    times = []
    for _ in range(args.epochs):
        start = time.perf_counter()
        epoch(model, optimizer, images, args.batch_size)
        times.append(time.perf_counter() - start)
    print(
        json.dumps(
            {
                "net": args.net,
                "torch": torch.__version__,
                "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                "threads": torch.get_num_threads(),
                "batch_size": args.batch_size,
                "epochs": len(times),
                "median_epoch_s": statistics.median(times),
                "min_epoch_s": min(times),
            }
        )
    )


if __name__ == "__main__":
    main()
