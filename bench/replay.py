#!/usr/bin/env python3
"""Replays a LightViT training run in vit-rs and in PyTorch from the same random draws.

A training run depends on its random draws: the initial weights and the order of the
batches. This script gives both frameworks the same ones, so that what is left to compare
is the arithmetic: PyTorch's reference model (bench/pytorch/models.py) draws the initial
weights with `torch.manual_seed(seed)` and saves them; `vit-runtime train lightvit
--weights` starts from them; PyTorch trains on batches in the order vit-runtime uses for
that seed (written by `cargo run --example batch_order`). Both run the spec's recipe
(Adam 0.005, batch 128, constant learning rate), one thread each, side by side.

It prints, per epoch, both sides' mean training loss and test accuracy, and the largest
difference between the two sides' losses at any single step. LightViT only: it has no
dropout and no augmentation, the two draws that cannot be shared between frameworks.

Usage: python3 bench/replay.py [--seed 0] [--epochs 5] [--out runs/replay-lightvit-seed0]
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench" / "pytorch"))
import models                                     # noqa: E402
from lightvit import load_mnist                   # noqa: E402

TRAIN_IMAGES = 60_000
BATCH = 128
LR = 0.005


def cargo_build() -> Path:
    """Release binary and the batch_order example; returns the target directory."""
    for extra in ([], ["--example", "batch_order"]):
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "vit-runtime", *extra],
                       cwd=ROOT, check=True)
    return ROOT / "target" / "release"


def train_pytorch(model: nn.Module, order: np.ndarray, epochs: int):
    """Per-step losses and per-epoch test accuracies of the spec's recipe, in `order`."""
    x_train, y_train = load_mnist("train")
    x_test, y_test = load_mnist("test")
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    criterion = nn.CrossEntropyLoss()
    losses, accuracies = [], []
    for epoch in range(epochs):
        perm = torch.from_numpy(order[epoch].astype(np.int64))
        for i in range(0, TRAIN_IMAGES, BATCH):
            idx = perm[i:i + BATCH]
            loss = criterion(model(x_train[idx]), y_train[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        model.eval()
        with torch.no_grad():
            correct = sum((model(x_test[i:i + 1000]).argmax(-1) == y_test[i:i + 1000]).sum().item()
                          for i in range(0, len(x_test), 1000))
        model.train()
        accuracies.append(100.0 * correct / len(x_test))
        print(f"  PyTorch epoch {epoch + 1}: test {accuracies[-1]:.2f}%", flush=True)
    return losses, accuracies


def vit_rs_run(metrics: Path):
    """Per-step losses (from the running means of `--log-every 1`) and test accuracies."""
    losses, accuracies, total = [], [], 0.0
    for line in metrics.read_text().splitlines():
        record = json.loads(line)
        if record["kind"] == "epoch":
            accuracies.append(100.0 * record["test_acc"])
            continue
        k = len(losses) % -(-TRAIN_IMAGES // BATCH) + 1   # step within its epoch, from 1
        if k == 1:
            total = 0.0
        losses.append(k * record["loss"] - total)
        total = k * record["loss"]
    return losses, accuracies


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--out", type=Path, help="default runs/replay-lightvit-seed<N>")
    args = ap.parse_args()
    out = (args.out or ROOT / "runs" / f"replay-lightvit-seed{args.seed}").resolve()
    out.mkdir(parents=True, exist_ok=True)

    target = cargo_build()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    model = models.build("lightvit")
    init = out / "init.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(init))
    order_file = out / "order.bin"
    subprocess.run([target / "examples" / "batch_order", "mnist", str(args.seed),
                    str(args.epochs), order_file], cwd=ROOT, check=True)
    order = np.fromfile(order_file, dtype="<u4").reshape(args.epochs, TRAIN_IMAGES)

    rust_dir = out / "vit-rs"
    rust = subprocess.Popen(
        [target / "vit-runtime", "train", "lightvit", "--seed", str(args.seed),
         "--epochs", str(args.epochs), "--weights", init, "--log-every", "1", "--quiet",
         "--out", rust_dir],
        cwd=ROOT, env={**os.environ, "RAYON_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL)
    pt_losses, pt_acc = train_pytorch(model, order, args.epochs)
    if rust.wait() != 0:
        sys.exit(f"vit-runtime failed (exit {rust.returncode}); see {rust_dir}")
    rs_losses, rs_acc = vit_rs_run(rust_dir / "metrics.jsonl")

    steps = len(pt_losses) // args.epochs
    print(f"\nLightViT, seed {args.seed}, the same initial weights and batch order\n")
    print("| epoch | vit-rs loss | PyTorch loss | vit-rs test | PyTorch test "
          "| largest step-loss difference |")
    print("|---|---|---|---|---|---|")
    for e in range(args.epochs):
        rs, pt = np.array(rs_losses[e * steps:(e + 1) * steps]), np.array(pt_losses[e * steps:(e + 1) * steps])
        print(f"| {e + 1} | {rs.mean():.4f} | {pt.mean():.4f} | {rs_acc[e]:.2f}% | {pt_acc[e]:.2f}% "
              f"| {np.abs(rs - pt).max():.1e} |")


if __name__ == "__main__":
    main()
