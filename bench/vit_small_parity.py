#!/usr/bin/env python3
"""models/vit_small_patch16_224.yaml against timm's own vit_small_patch16_224.

1. timm's model (random weights: timm's init, perturbed so that no tensor is zero or one)
   saved with safetensors; its parameter count against vit-rs's (`vit-runtime models`) and
   against 22,050,664;
2. `vit-runtime predict vit_small_patch16_224 --weights` on fixed 224x224 RGB pictures:
   every tensor must load (no warning about an unused one, no error about a missing one),
   and the logits of every class must equal timm's within 1e-4 (timm in evaluation mode on
   the same pixels, normalised as the spec says);
3. the same weights adapted to `vit_small_mnist` (`--adapt`): the list of what was adapted.

Needs torch, timm (`pip install --no-deps timm` with torchvision), safetensors, numpy,
Pillow and a release build (`cargo build --release -p vit-runtime`).

Usage: python3 bench/vit_small_parity.py [--binary target/release/vit-runtime] [--images 4]
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import timm
import torch
from PIL import Image
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[1]
TIMM_PARAMS = 22_050_664
TOL = 1e-4


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", type=Path, default=ROOT / "target/release/vit-runtime")
    ap.add_argument("--images", type=int, default=4)
    args = ap.parse_args()
    torch.manual_seed(0)
    model = timm.create_model("vit_small_patch16_224", pretrained=False).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    count = sum(p.numel() for p in model.parameters())
    listing = subprocess.run([str(args.binary), "models"], capture_output=True, text=True,
                             check=True).stdout
    row = next(line.split() for line in listing.splitlines()
               if line.split()[:1] == ["vit_small_patch16_224"])
    ours_count = int(row[4])  # model, kind, input, classes, params, ...
    print(f"parameters: timm {count:,}, vit-rs {ours_count:,} (timm's published {TIMM_PARAMS:,})")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        weights = tmp / "vit_small_patch16_224.safetensors"
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
        rng = np.random.default_rng(0)
        files, pixels = [], []
        for i in range(args.images):
            # Smooth colour fields plus noise: pictures with structure at the patch scale.
            y, x = np.mgrid[0:224, 0:224] / 224.0
            img = np.stack([np.sin(6 * x + i), np.cos(5 * y - i), np.sin(4 * (x + y))], -1)
            img = ((img + 1) * 100 + rng.integers(0, 55, img.shape)).clip(0, 255).astype(np.uint8)
            path = tmp / f"picture{i}.png"
            Image.fromarray(img).save(path)
            files.append(str(path))
            pixels.append(img)
        run = subprocess.run([str(args.binary), "predict", "vit_small_patch16_224", "--weights",
                              str(weights), "--json", "--top", "1000", *files],
                             capture_output=True, text=True)
        if run.returncode != 0:
            sys.exit(f"vit-runtime predict failed:\n{run.stderr}")
        if "warning" in run.stderr:
            sys.exit(f"tensors left over:\n{run.stderr}")
        predictions = json.loads(run.stdout)
        ours = np.zeros((args.images, 1000), dtype=np.float64)
        for i, p in enumerate(predictions):
            for c in p["top"]:
                ours[i, c["index"]] = c["logit"]
        x = torch.tensor(np.stack(pixels), dtype=torch.float32).permute(0, 3, 1, 2) / 255.0
        x = (x - 0.5) / 0.5
        with torch.no_grad():
            theirs = model(x).double().numpy()
        diff = np.abs(ours - theirs).max()
        agree = (ours.argmax(1) == theirs.argmax(1)).mean()
        print(f"logits of {args.images} pictures x 1000 classes: max abs diff {diff:.2e} "
              f"(tolerance {TOL:.0e}), logit scale {np.abs(theirs).max():.2f}, "
              f"top-1 agreement {agree:.0%}")

        digit = tmp / "digit.png"
        Image.fromarray(rng.integers(0, 255, (28, 28), dtype=np.uint8)).save(digit)
        adapted = subprocess.run([str(args.binary), "predict", "vit_small_mnist", "--weights",
                                  str(weights), "--adapt", str(digit)],
                                 capture_output=True, text=True)
        print("adapted to vit_small_mnist:")
        print("\n".join("  " + line for line in adapted.stderr.splitlines()))
        if adapted.returncode != 0:
            sys.exit("vit-runtime predict --adapt failed")
    failed = []
    if not count == ours_count == TIMM_PARAMS:
        failed.append("parameter count")
    if diff > TOL:
        failed.append("logits")
    if failed:
        sys.exit("FAILED: " + ", ".join(failed))
    print("OK")


if __name__ == "__main__":
    main()
