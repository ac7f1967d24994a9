#!/usr/bin/env python3
"""vit-rs against PyTorch on this machine, side by side: the ratio table of README.md.

For every spec, runs `vit-runtime bench <model> --json` (release build) and
`bench/pytorch/bench.py <model>` in turn, each model in its own processes so that peak
memory is that model's, and prints a Markdown table of images/s and peak RSS with the
ratios vit-rs / PyTorch. Timings are medians after warm-up; run it on an otherwise idle
machine (other jobs on the same cores distort both sides, PyTorch's threads most).

Usage: cargo build --release -p vit-runtime && python3 bench/compare.py
           [--models lightvit,vit,deit,cnn] [--steps 20] [--threads 2]
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
    args = ap.parse_args()
    if not BINARY.exists():
        sys.exit(f"{BINARY} not found: run `cargo build --release -p vit-runtime` first")
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    common = ["--steps", str(args.steps), "--warmup", str(args.warmup)]
    rows = []
    for model in args.models.split(","):
        ours = run_json([str(BINARY), "bench", model, "--json", "--device", "cpu", *common], env)
        torch = run_json([sys.executable, str(ROOT / "bench/pytorch/bench.py"), model,
                          "--threads", str(args.threads), *common])
        rows.append((model, ours, torch))
        print(f"{model}: done", file=sys.stderr)

    gib = 1 << 30
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
