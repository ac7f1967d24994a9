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

`--peers` names PyTorch's sides, each a column: `eager` (the reference models of
bench/pytorch/models.py), `timm` (timm's own VisionTransformer / VisionTransformerDistilled,
fused attention; ViT and DeiT specs only), `compile` and `timm-compile` (the same under
`torch.compile`, its compilation time reported apart). The ratio columns compare vit-rs with
each, and `best` with the fastest peer of the round.

Below the ratios, a table of FLOPs per image (torch's flop counter on the eager model:
matrix products and convolutions) and the fraction of this CPU's FP32 peak each side
reaches; the peak is measured by bench/peak.c on the same threads (an FMA loop on the
widest vectors), before and after the rounds.

Usage: cargo build --release -p vit-runtime && python3 bench/compare.py
           [--models lightvit,vit,deit,cnn] [--steps 20] [--rounds 3] [--threads 2] [--device cpu]
           [--peers eager,timm,compile,timm-compile] [--train-batch 128] [--infer-batch 1000]
           [--binary target/release/vit-runtime]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BINARY = ROOT / "target" / "release" / "vit-runtime"


def last_json(stdout: str) -> dict:
    """The JSON report a benchmark prints as its last line."""
    return json.loads(stdout.strip().splitlines()[-1])


def run_json(cmd, env=None) -> dict:
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True, env=env)
    return last_json(out.stdout)


PEERS = {  # peer name -> bench.py flags
    "eager": ["--peer", "pytorch"],
    "timm": ["--peer", "timm"],
    "compile": ["--peer", "pytorch", "--compile"],
    "timm-compile": ["--peer", "timm", "--compile"],
}
NOT_APPLICABLE = 3  # bench.py's exit status when a peer has no model for the spec
TRAIN, INFER = "train_images_per_sec", "infer_images_per_sec"


def run_peer(model: str, peer: str, args, common: list):
    """One peer's JSON for `model`, or None when the peer has no model for that spec."""
    cmd = [sys.executable, str(ROOT / "bench/pytorch/bench.py"), model, "--device", args.device,
           "--threads", str(args.threads), *PEERS[peer], *common]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if out.returncode == NOT_APPLICABLE:
        return None
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{out.stderr}")
    return last_json(out.stdout)


def measured_peak_gflops(threads: int):
    """FP32 GFLOP/s of bench/peak.c on `threads` threads, or None without a C compiler."""
    with tempfile.TemporaryDirectory() as tmp:
        exe = Path(tmp) / "peak"
        try:
            build = subprocess.run(["cc", "-O2", "-march=native", "-pthread",
                                    str(ROOT / "bench/peak.c"), "-o", str(exe)],
                                   capture_output=True, text=True)
        except FileNotFoundError:
            print("no FP32 peak: no C compiler `cc`", file=sys.stderr)
            return None
        if build.returncode != 0:
            print(f"no FP32 peak: bench/peak.c did not build:\n{build.stderr}", file=sys.stderr)
            return None
        return run_json([str(exe), str(threads)])["gflops"]


def ratio_cell(rounds, peer: str, key: str) -> str:
    """Median ratio vit-rs / peer over the rounds, with the per-round spread."""
    ratios = [r["vit-rs"][key] / r[peer][key] for r in rounds if r.get(peer)]
    if not ratios:
        return "n/a"
    return f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"


def best_ratio_cell(rounds, peers: list, key: str) -> str:
    """Median ratio vit-rs / the fastest peer of each round, with the per-round spread."""
    best = [{"vit-rs": r["vit-rs"], "best": {key: max(r[p][key] for p in peers if r.get(p))}}
            for r in rounds if any(r.get(p) for p in peers)]
    return ratio_cell(best, "best", key)


def median_cell(rounds, side: str, key: str, fmt="{:,.0f}") -> str:
    values = [r[side][key] for r in rounds if r.get(side) and key in r[side]]
    return fmt.format(statistics.median(values)) if values else "n/a"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="lightvit,vit,deit,cnn")
    ap.add_argument("--steps", type=int, default=20, help="timed steps per figure")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3,
                    help="alternating vit-rs/PyTorch measurements per model")
    ap.add_argument("--threads", type=int, default=2, help="threads for both sides")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--peers", default="eager",
                    help=f"PyTorch's sides, comma-separated, from {', '.join(PEERS)}")
    ap.add_argument("--train-batch", type=int, default=128)
    ap.add_argument("--infer-batch", type=int, default=1000)
    ap.add_argument("--binary", type=Path, default=BINARY, help="the vit-runtime to measure")
    args = ap.parse_args()
    peers = args.peers.split(",")
    unknown = [p for p in peers if p not in PEERS]
    if unknown:
        sys.exit(f"unknown peer {', '.join(unknown)}: choose from {', '.join(PEERS)}")
    if not args.binary.exists():
        sys.exit(f"{args.binary} not found: run `cargo build --release -p vit-runtime` first")
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    common = ["--steps", str(args.steps), "--warmup", str(args.warmup),
              "--train-batch", str(args.train_batch), "--infer-batch", str(args.infer_batch)]
    peak = [measured_peak_gflops(args.threads)] if args.device == "cpu" else []
    rows = []
    for model in args.models.split(","):
        rounds = []
        for _ in range(args.rounds):
            ours = run_json([str(args.binary), "bench", model, "--json", "--device",
                             args.device, *common], env)
            if ours["device"] != args.device:
                sys.exit(f"vit-runtime ran on {ours['device']}, not {args.device}")
            round_ = {"vit-rs": ours}
            for peer in peers:
                round_[peer] = run_peer(model, peer, args, common)
            rounds.append(round_)
        rows.append((model, rounds))
        print(f"{model}: done", file=sys.stderr)
    if peak:
        peak.append(measured_peak_gflops(args.threads))

    print(f"{args.device}, train batch {args.train_batch}, inference batch {args.infer_batch}, "
          f"{args.threads} CPU threads, medians of {args.rounds} alternating rounds "
          f"(ratio spread over the rounds in brackets)")
    for title, key in (("training", TRAIN), ("inference", INFER)):
        print(f"\n{title}, images/s:\n")
        print(f"| model | vit-rs | {' | '.join(peers)} | "
              f"{' | '.join(f'vit-rs / {p}' for p in peers)} |")
        print(f"|---|---|{'---|' * (2 * len(peers))}")
        for model, rounds in rows:
            cells = [median_cell(rounds, "vit-rs", key)]
            cells += [median_cell(rounds, p, key) for p in peers]
            cells += [ratio_cell(rounds, p, key) for p in peers]
            print(f"| {model} | {' | '.join(cells)} |")
        if len(peers) > 1:
            print("\nvit-rs / fastest peer of each round: " + ", ".join(
                f"{model} {best_ratio_cell(rounds, peers, key)}" for model, rounds in rows))

    gib = 1 << 30
    peak_text = " / ".join(f"{g:,.0f}" for g in peak if g) or "not measured"
    print(f"\nwork and memory (FP32 peak of {args.threads} thread(s), before / after: "
          f"{peak_text} GFLOP/s; FLOPs counted by torch on the eager model of the first peer that ran):\n")
    print("| model | train MFLOP/image | train GFLOP/s vit-rs (% of peak) | inference MFLOP/image "
          "| inference GFLOP/s vit-rs (% of peak) | peak RSS vit-rs | "
          + " | ".join(f"peak RSS {p}" for p in peers) + " | compile s |")
    print(f"|---|---|---|---|---|---|{'---|' * len(peers)}---|")
    best_peak = max((g for g in peak if g), default=None)
    for model, rounds in rows:
        cells = []
        for key, flops_key in ((TRAIN, "train_flops_per_image"), (INFER, "infer_flops_per_image")):
            flops = [r[p][flops_key] for r in rounds for p in peers if r.get(p)]
            if not flops:
                cells += ["n/a", "n/a"]
                continue
            gflops = statistics.median(r["vit-rs"][key] for r in rounds) * flops[0] / 1e9
            share = f" ({100 * gflops / best_peak:.0f}%)" if best_peak else ""
            cells += [f"{flops[0] / 1e6:.1f}", f"{gflops:,.0f}{share}"]
        for side in ["vit-rs", *peers]:
            rss = [r[side]["peak_rss_bytes"] for r in rounds if r.get(side)]
            cells.append(f"{max(rss) / gib:.2f} GiB" if rss else "n/a")
        compiles = [f"{p} {median_cell(rounds, p, 'compile_seconds', '{:.0f}')}"
                    for p in peers if p.endswith("compile")]
        cells.append(", ".join(compiles) or "-")
        print(f"| {model} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
