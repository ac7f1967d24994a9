#!/usr/bin/env python3
"""vit-rs against PyTorch on this machine, side by side: the ratio table of README.md.

For every spec, runs `vit-runtime bench <model> --json` (release build) and
`bench/pytorch/bench.py <model>` in turn, each model in its own processes so that peak
memory is that model's, and prints a Markdown table of images/s and peak RSS with the
ratios vit-rs / PyTorch. Timings are medians after warm-up; run it on an otherwise idle
machine (other jobs on the same cores distort both sides, PyTorch's threads most).

Throughput on a shared virtual machine drifts by tens of percent from one minute to the
next, so each model is measured in `--rounds` alternating pairs (vit-rs, PyTorch, vit-rs,
...): the table gives each side's median over the rounds, and the spread of the per-round
ratios shows how far to trust them.

On a GPU machine (`--device cuda`, see bench/cuda/), both sides run on the GPU and the
binary is the CUDA build given by `--binary`.

`--peer timm` measures timm's own VisionTransformer (fused attention) instead of the
reference models of bench/pytorch/models.py, for plain ViT specs.

Usage: cargo build --release -p vit-runtime && python3 bench/compare.py
           [--models lightvit,vit,deit,cnn] [--steps 20] [--rounds 3] [--threads 2] [--device cpu]
           [--peer pytorch|timm] [--train-batch 128] [--infer-batch 1000]
           [--binary target/release/vit-runtime]
"""

import argparse
import json
import os
import statistics
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
    ap.add_argument("--rounds", type=int, default=3,
                    help="alternating vit-rs/PyTorch measurements per model")
    ap.add_argument("--threads", type=int, default=2, help="threads for both sides")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--peer", choices=["pytorch", "timm"], default="pytorch",
                    help="PyTorch's side: the reference models, or timm's VisionTransformer")
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
        rounds = []
        for _ in range(args.rounds):
            ours = run_json([str(args.binary), "bench", model, "--json", "--device",
                             args.device, *common], env)
            torch = run_json([sys.executable, str(ROOT / "bench/pytorch/bench.py"), model,
                              "--device", args.device, "--threads", str(args.threads),
                              "--peer", args.peer, *common])
            if ours["device"] != args.device:
                sys.exit(f"vit-runtime ran on {ours['device']}, not {args.device}")
            rounds.append((ours, torch))
        rows.append((model, rounds))
        print(f"{model}: done", file=sys.stderr)

    def median(rounds, side, key):
        return statistics.median(r[side][key] for r in rounds)

    def spread(rounds, key):
        ratios = [ours[key] / torch[key] for ours, torch in rounds]
        return f"{min(ratios):.2f}-{max(ratios):.2f}"

    gib = 1 << 30
    train, infer = "train_images_per_sec", "infer_images_per_sec"
    print(f"{args.device}, train batch {args.train_batch}, inference batch {args.infer_batch}, "
          f"{args.threads} CPU threads, peer {args.peer}, medians of {args.rounds} alternating rounds")
    peer = "timm" if args.peer == "timm" else "PyTorch"
    print(f"| model | train img/s vit-rs | {peer} | ratio (rounds) | inference img/s vit-rs "
          f"| {peer} | ratio (rounds) | peak RSS vit-rs | {peer} |")
    print("|---|---|---|---|---|---|---|---|---|")
    for model, rounds in rows:
        ours_t, torch_t = median(rounds, 0, train), median(rounds, 1, train)
        ours_i, torch_i = median(rounds, 0, infer), median(rounds, 1, infer)
        rss_ours = max(r[0]["peak_rss_bytes"] for r in rounds) / gib
        rss_torch = max(r[1]["peak_rss_bytes"] for r in rounds) / gib
        print(f"| {model} | {ours_t:,.0f} | {torch_t:,.0f} | "
              f"{ours_t / torch_t:.2f}x ({spread(rounds, train)}) | "
              f"{ours_i:,.0f} | {torch_i:,.0f} | {ours_i / torch_i:.2f}x ({spread(rounds, infer)}) | "
              f"{rss_ours:.2f} GiB | {rss_torch:.2f} GiB |")

if __name__ == "__main__":
    main()
