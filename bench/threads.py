#!/usr/bin/env python3
"""How vit-rs scales from one thread to several: the thread-scaling table of docs/results.md.

For every spec, runs `vit-runtime bench <model> --json` with RAYON_NUM_THREADS=1 and =N in
alternating rounds (1, N, 1, N, ...), each in its own process, and prints a Markdown table
of training and inference images/s on each and the ratio N threads / 1 thread, as the
median over the rounds with the spread of the per-round ratios. Run it on an otherwise
idle machine: anything else on the cores takes its share from the N-thread side first.

Usage: cargo build --release -p vit-runtime && python3 bench/threads.py
           [--models lightvit,vit,deit,cnn] [--threads 2] [--steps 10] [--rounds 3]
           [--binary target/release/vit-runtime]
"""

import argparse
import os
import statistics
import sys
from pathlib import Path

from compare import BINARY, run_json

TRAIN, INFER = "train_images_per_sec", "infer_images_per_sec"


def bench(binary: Path, model: str, threads: int, common: list) -> dict:
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    report = run_json([str(binary), "bench", model, "--json", "--device", "cpu", *common], env)
    if report["threads"] != threads:
        sys.exit(f"{model}: asked for {threads} threads, the pool had {report['threads']}")
    return report


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="lightvit,vit,deit,cnn")
    ap.add_argument("--threads", type=int, default=2, help="the many-thread side")
    ap.add_argument("--steps", type=int, default=10, help="timed steps per figure")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, help="alternating 1/N-thread pairs")
    ap.add_argument("--train-batch", type=int, default=128)
    ap.add_argument("--infer-batch", type=int, default=1000)
    ap.add_argument("--binary", type=Path, default=BINARY, help="the vit-runtime to measure")
    args = ap.parse_args()
    if not args.binary.exists():
        sys.exit(f"{args.binary} not found: run `cargo build --release -p vit-runtime` first")
    common = ["--steps", str(args.steps), "--warmup", str(args.warmup),
              "--train-batch", str(args.train_batch), "--infer-batch", str(args.infer_batch)]
    n = args.threads
    print(f"cpu, train batch {args.train_batch}, inference batch {args.infer_batch}, "
          f"medians of {args.rounds} alternating rounds")
    print(f"| model | train img/s, 1 thread | {n} threads | ratio (rounds) "
          f"| inference img/s, 1 thread | {n} threads | ratio (rounds) |")
    print("|---|---|---|---|---|---|---|")
    for model in args.models.split(","):
        rounds = [(bench(args.binary, model, 1, common), bench(args.binary, model, n, common))
                  for _ in range(args.rounds)]
        cells = []
        for key in (TRAIN, INFER):
            one = statistics.median(r[0][key] for r in rounds)
            many = statistics.median(r[1][key] for r in rounds)
            ratios = [r[1][key] / r[0][key] for r in rounds]
            cells.append(f"{one:,.0f} | {many:,.0f} | {many / one:.2f}x "
                         f"({min(ratios):.2f}-{max(ratios):.2f})")
        print(f"| {model} | {' | '.join(cells)} |", flush=True)


if __name__ == "__main__":
    main()
