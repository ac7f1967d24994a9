#!/usr/bin/env python3
"""Are vit-rs's initial weights drawn from the same distributions as PyTorch's?

For seeds 0..N-1, takes a spec's initial weights from both frameworks: vit-rs's from
`vit-runtime init <spec> --seed S` (the draw `train --seed S` starts from), PyTorch's from `bench/pytorch/models.py` after
`torch.manual_seed(seed)`. Per tensor, pools the values over the seeds and prints both
standard deviations and the two-sample Kolmogorov-Smirnov p-value (asymptotic). With many
tensors, some p-values are small by chance: the smallest of 50 is about 0.02.

Usage: cargo build --release -p vit-runtime && python3 bench/init_distributions.py lightvit [--seeds 40]
"""

import argparse
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench" / "pytorch"))
import models  # noqa: E402


def ks_pvalue(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov test, asymptotic p-value (Smirnov's series)."""
    a, b = np.sort(a), np.sort(b)
    grid = np.concatenate([a, b])
    d = np.max(np.abs(np.searchsorted(a, grid, side="right") / len(a)
                      - np.searchsorted(b, grid, side="right") / len(b)))
    n = len(a) * len(b) / (len(a) + len(b))
    lam = (math.sqrt(n) + 0.12 + 0.11 / math.sqrt(n)) * d
    p = 2 * sum((-1) ** (k - 1) * math.exp(-2 * (k * lam) ** 2) for k in range(1, 101))
    return min(max(p, 0.0), 1.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("spec")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--binary", type=Path, default=ROOT / "target" / "release" / "vit-runtime")
    args = ap.parse_args()
    rust, torch_ = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            out = Path(tmp) / f"seed{seed}.safetensors"
            subprocess.run([args.binary, "init", args.spec, "--seed", str(seed), "--out", out],
                           cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
            for name, t in load_file(str(out)).items():
                if not name.startswith("optimizer."):
                    rust.setdefault(name, []).append(t.ravel())
            torch.manual_seed(seed)
            for name, t in models.build(args.spec).state_dict().items():
                torch_.setdefault(name, []).append(t.numpy().ravel())
    print(f"{args.spec}, seeds 0-{args.seeds - 1}, values pooled over seeds\n")
    print("| tensor | std vit-rs | std PyTorch | KS p |")
    print("|---|---|---|---|")
    smallest = []
    for name in sorted(rust):
        a, b = np.concatenate(rust[name]), np.concatenate(torch_[name])
        if a.std() == 0 and b.std() == 0:
            continue                      # constant initialisers (LayerNorm) agree exactly
        if np.array_equal(a, b):
            continue                      # fixed tables (sinusoidal positions)
        p = ks_pvalue(a, b)
        smallest.append(p)
        print(f"| {name} | {a.std():.4f} | {b.std():.4f} | {p:.3f} |")
    print(f"\n{len(smallest)} random tensors, smallest p {min(smallest):.3f}")


if __name__ == "__main__":
    main()
