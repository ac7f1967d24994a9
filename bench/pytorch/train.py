#!/usr/bin/env python3
"""PyTorch trains a ViT spec with its own recipe, as `vit-runtime train <spec>` does.

The peer of the training figures in README.md: the model of `models.py` (the same
architecture and initialisers as the generated Rust model), the spec's optimiser (Adam /
AdamW on every parameter, PyTorch's defaults for betas and eps unless the spec sets them),
its schedule per step (linear warm-up from 0 over `warmup_epochs`, then cosine to
`min_lr`), batch size, augmentation (zero-padded random crop, horizontal flip, on raw
pixels, as torchvision's RandomCrop -> RandomHorizontalFlip -> ToTensor -> Normalize) and
normalisation; a fresh shuffle every epoch; the test-set accuracy after every epoch.
The random draws are PyTorch's own (`torch.manual_seed(seed)`), not vit-rs's.

With `--init FILE` (a safetensors file, e.g. a vit-rs checkpoint: its `optimizer.*`
entries are skipped) and `--order FILE` (what `cargo run --release --example batch_order`
writes) PyTorch starts from those weights and visits the images in that order, so that
only the dropout and augmentation draws differ from a vit-rs run.

Usage: python3 bench/pytorch/train.py vit [--epochs 4] [--seed 0] [--threads 2]
           [--init FILE] [--order FILE]
"""

import argparse
import gzip
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import models  # noqa: E402

DATA_DIR = Path(__file__).resolve().parents[2] / "data"


def read_idx(path: Path) -> np.ndarray:
    """An IDX file, raw or gzipped (big-endian header: magic, then dims)."""
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">u4", count=ndim, offset=4)
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(dataset: str, split: str):
    """Raw pixels as (N, 1, 28, 28) float32 in [0, 1] and int64 labels."""
    prefix = "train" if split == "train" else "t10k"
    folder = DATA_DIR / dataset

    def find(kind: str) -> Path:
        for name in (f"{prefix}-{kind}", f"{prefix}-{kind}.gz"):
            if (folder / name).exists():
                return folder / name
        raise SystemExit(f"no {prefix}-{kind} in {folder}: run scripts/fetch-data.sh")

    x = read_idx(find("images-idx3-ubyte")).astype(np.float32) / 255.0
    y = read_idx(find("labels-idx1-ubyte")).astype(np.int64)
    return torch.from_numpy(x).unsqueeze(1), torch.from_numpy(y)


def augment(x: torch.Tensor, recipe: dict) -> torch.Tensor:
    """Per example: a random crop of the zero-padded image, then a coin-flip mirror."""
    aug = recipe.get("augment") or {}
    crop = aug.get("random_crop")
    if crop:
        size, pad = crop["size"], crop["padding"]
        padded = F.pad(x, (pad, pad, pad, pad))
        span = padded.shape[-1] - size + 1
        tops = torch.randint(0, span, (len(x),))
        lefts = torch.randint(0, span, (len(x),))
        x = torch.stack([padded[i, :, t:t + size, l:l + size]
                         for i, (t, l) in enumerate(zip(tops.tolist(), lefts.tolist()))])
    if aug.get("horizontal_flip"):
        flip = torch.rand(len(x)) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    return x


def lr_at(recipe: dict, step: int, steps_per_epoch: int, total: int) -> float:
    """vit-runtime's `schedule::lr_at`."""
    base, schedule = recipe["optimizer"]["lr"], recipe.get("schedule", {"kind": "constant"})
    if schedule["kind"] == "constant":
        return base
    warmup = schedule.get("warmup_epochs", 0) * steps_per_epoch
    if step < warmup:
        return base * (step + 1) / warmup
    low = schedule.get("min_lr", 0.0)
    progress = min((step - warmup) / max(total - warmup, 1), 1.0)
    return low + (base - low) * 0.5 * (1 + math.cos(math.pi * progress))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("spec")
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--init", type=Path, help="initial weights (safetensors)")
    ap.add_argument("--order", type=Path, help="batch order (little-endian u32 per image)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    recipe = models.load_spec(args.spec)["train"]
    epochs = args.epochs or recipe["epochs"]
    norm = recipe.get("normalize") or {"mean": 0.0, "std": 1.0}
    model = models.build(args.spec)
    if args.init:
        from safetensors.torch import load_file
        weights = {k: v for k, v in load_file(str(args.init)).items()
                   if not k.startswith("optimizer.")}
        model.load_state_dict(weights)
    opt_spec = recipe["optimizer"]
    kind = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[opt_spec["kind"]]
    opt = kind(model.parameters(), lr=opt_spec["lr"],
               weight_decay=opt_spec.get("weight_decay", 0.0))

    x_train, y_train = load(recipe["dataset"], "train")
    x_test, y_test = load(recipe["dataset"], "test")
    x_test = (x_test - norm["mean"]) / norm["std"]
    batch = recipe["batch_size"]
    steps_per_epoch = math.ceil(len(x_train) / batch)
    total, step = epochs * steps_per_epoch, 0
    if args.order:
        order = np.fromfile(args.order, dtype="<u4").astype(np.int64)
        if len(order) < epochs * len(x_train):
            raise SystemExit(f"{args.order} holds fewer than {epochs} epochs of order")
        order = torch.from_numpy(order[:epochs * len(x_train)].reshape(epochs, -1))
    for epoch in range(1, epochs + 1):
        model.train()
        start, loss_sum = time.perf_counter(), 0.0
        perm = order[epoch - 1] if args.order else torch.randperm(len(x_train))
        for idx in perm.split(batch):
            for group in opt.param_groups:
                group["lr"] = lr_at(recipe, step, steps_per_epoch, total)
            x = (augment(x_train[idx], recipe) - norm["mean"]) / norm["std"]
            loss = F.cross_entropy(model(x), y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += loss.item()
            step += 1
        seconds = time.perf_counter() - start
        model.eval()
        with torch.no_grad():
            correct = sum((model(xb).argmax(1) == yb).sum().item()
                          for xb, yb in zip(x_test.split(1000), y_test.split(1000)))
        print(json.dumps({"epoch": epoch, "loss": loss_sum / steps_per_epoch,
                          "test_acc": correct / len(x_test), "seconds": round(seconds, 1)}),
              flush=True)


if __name__ == "__main__":
    main()
