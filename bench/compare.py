#!/usr/bin/env python3
"""vit-rs against PyTorch on this machine, side by side: the ratio table of README.md.

For every spec, runs `vit-runtime bench <model> --json` (release build) and
`bench/pytorch/bench.py <model>` in turn, each model in its own processes so that peak
memory is that model's, and prints a Markdown table of images/s and peak RSS with the
ratios vit-rs / PyTorch. Timings are medians after warm-up; run it on an otherwise idle
machine (other jobs on the same cores distort both sides, PyTorch's threads most).

On a GPU machine (`--device cuda`, see bench/cuda/), both sides run on the GPU and the
binary is the CUDA build given by `--binary`.

Usage: cargo build --release -p vit-runtime && python3 bench/compare.py
           [--models lightvit,vit,deit,cnn] [--steps 20] [--threads 2] [--device cpu]
           [--train-batch 128] [--infer-batch 1000] [--binary target/release/vit-runtime]
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BINARY = ROOT / "target" / "release" / "vit-runtime"


def run_json(cmd, env=None) -> dict:
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="lightvit,vit,deit,cnn")
    ap.add_argument("--steps", type=int, default=20, help="timed steps per figure")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="threads for both sides")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--train-batch", type=int, default=128)
    ap.add_argument("--infer-batch", type=int, default=1000)
    ap.add_argument("--binary", type=Path, default=BINARY, help="the vit-runtime to measure")
    args = ap.parse_args()
    if not args.binary.exists():
        sys.exit(f"{args.binary} not found: run `cargo build --release -p vit-runtime` first")
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    common = ["--steps", str(args.steps), "--warmup", str(args.warmup),
              "--train-batch", str(args.train_batch), "--infer-batch", str(args.infer_batch)]
    rows = []
    for model in args.models.split(","):
        ours = run_json([str(args.binary), "bench", model, "--json", "--device", args.device,
                         *common], env)
        torch = run_json([sys.executable, str(ROOT / "bench/pytorch/bench.py"), model,
                          "--device", args.device, "--threads", str(args.threads), *common])
        if ours["device"] != args.device:
            sys.exit(f"vit-runtime ran on {ours['device']}, not {args.device}")
        rows.append((model, ours, torch))
        print(f"{model}: done", file=sys.stderr)

    gib = 1 << 30
    print(f"{args.device}, train batch {args.train_batch}, inference batch {args.infer_batch}, "
          f"{args.threads} CPU threads")
    print(f"| model | train img/s vit-rs | PyTorch | ratio | inference img/s vit-rs | PyTorch "
          f"| ratio | peak RSS vit-rs | PyTorch |")
    print("|---|---|---|---|---|---|---|---|---|")
    for model, ours, torch in rows:
        t_ratio = ours["train_images_per_sec"] / torch["train_images_per_sec"]
        i_ratio = ours["infer_images_per_sec"] / torch["infer_images_per_sec"]
        print(f"| {model} | {ours['train_images_per_sec']:,.0f} | "
              f"{torch['train_images_per_sec']:,.0f} | {t_ratio:.2f}x | "
              f"{ours['infer_images_per_sec']:,.0f} | {torch['infer_images_per_sec']:,.0f} | "
              f"{i_ratio:.2f}x | {ours['peak_rss_bytes'] / gib:.2f} GiB | "
              f"{torch['peak_rss_bytes'] / gib:.2f} GiB |")


if __name__ == "__main__":
    main()
