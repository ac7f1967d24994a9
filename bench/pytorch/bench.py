#!/usr/bin/env python3
"""PyTorch's side of `bench/compare.py`: the work `vit-runtime bench <model>` times.

Data in memory (random inputs), a training step is forward (training mode) + loss +
backward + optimiser step of the spec's optimiser (DeiT: hard distillation from a CNN
teacher whose forward is included), inference is an eval-mode forward under no_grad.
Figures are medians over timed steps after warm-up; peak RSS is the process's.
Prints one JSON line with the same keys as `vit-runtime bench --json`.

On CUDA every timed step ends with `torch.cuda.synchronize()` (kernels run asynchronously),
and the JSON adds the peak GPU memory PyTorch allocated.

With `--peer timm` the model is timm's own `VisionTransformer` at the spec's sizes (ViT
specs; `VisionTransformerDistilled` for DeiT: its attention is fused
`scaled_dot_product_attention`) instead of the reference model of `models.py`.
`--compile` runs the model under `torch.compile` (the default inductor backend); the JSON
gives the seconds the first training and inference steps took beyond a timed one (the
compilation) apart from the throughput, which is measured after it.

The JSON also gives the FLOPs of one image's training step (forward, backward, the DeiT
teacher's forward) and inference, as `torch.utils.flop_counter` counts them on the eager
model: matrix products and convolutions at 2 FLOP per multiply-add, element-wise work
left out. `bench/compare.py` turns them into a fraction of the measured peak.

Usage: python3 bench/pytorch/bench.py <model> [--device cpu|cuda] [--threads 2]
           [--peer pytorch|timm] [--compile] [--train-batch 128] [--infer-batch 1000]
           [--warmup 3] [--steps 20]
"""

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import models  # noqa: E402


def optimizer_for(spec: dict, params):
    opt = spec["train"]["optimizer"]
    kind, lr = opt["kind"], opt["lr"]
    wd = opt.get("weight_decay", 0.0)
    if kind == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    return torch.optim.SGD(params, lr=lr, momentum=opt.get("momentum", 0.0), weight_decay=wd)


NOT_APPLICABLE = 3  # the exit status when timm has no model for the spec


def not_applicable(reason: str):
    print(f"--peer timm: {reason}", file=sys.stderr)
    sys.exit(NOT_APPLICABLE)


def timm_vit(spec: dict):
    """timm's VisionTransformer (VisionTransformerDistilled for a DeiT spec, in distilled
    training so that it returns both heads' logits as the reference model does) with the
    sizes, dropout rates and LayerNorm eps of a ViT spec (conv tokenizer, fused qkv, class
    token, learned positions, GELU)."""
    from functools import partial

    from timm.models import VisionTransformer
    from timm.models.deit import VisionTransformerDistilled

    if "vit" not in spec:
        not_applicable(f"{spec['name']} is not a ViT spec")
    v = spec["vit"]
    plain = dict(tokenizer="conv", qkv="fused", pooling="cls", positions="learned",
                 activation="gelu")
    for key, value in plain.items():
        if v.get(key, value) != value:
            not_applicable(f"{spec['name']} has {key}: {v[key]}, timm's ViT {value}")
    c, h, w = (spec["input"][k] for k in ("channels", "height", "width"))
    dim = v["embed_dim"]
    hidden = v.get("mlp_hidden") or int(round(v["mlp_ratio"] * dim))
    kind = VisionTransformerDistilled if v.get("distillation") else VisionTransformer
    model = kind(
        img_size=(h, w), patch_size=v["patch"], in_chans=c, num_classes=spec["classes"],
        embed_dim=dim, depth=v["depth"], num_heads=v["heads"], mlp_ratio=hidden / dim,
        qkv_bias=True, drop_rate=v.get("dropout", 0.0),
        attn_drop_rate=v.get("attention_dropout", 0.0), drop_path_rate=v.get("drop_path", 0.0),
        norm_layer=partial(torch.nn.LayerNorm, eps=v.get("norm_eps", 1e-5)),
        final_norm=v.get("final_norm", True))
    if v.get("distillation"):
        model.set_distilled_training(True)
    return model


def flops_per_image(step, batch: int) -> float:
    """FLOPs of one call of `step` per image, as torch's flop counter sees them."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return counter.get_total_flops() / batch


def step_seconds(step, warmup: int, steps: int, sync) -> tuple:
    """The first step's seconds and the median of the timed ones after warm-up."""
    times = []
    for _ in range(warmup + steps):
        started = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - started)
    return times[0], statistics.median(times[warmup:])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", choices=models.ALL_SPECS)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--threads", type=int, default=2, help="intra-op threads")
    ap.add_argument("--peer", choices=["pytorch", "timm"], default="pytorch",
                    help="the reference model of models.py, or timm's VisionTransformer")
    ap.add_argument("--compile", action="store_true", help="run the model under torch.compile")
    ap.add_argument("--train-batch", type=int, default=128)
    ap.add_argument("--infer-batch", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    spec = models.load_spec(args.model)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)
    model = (timm_vit(spec) if args.peer == "timm" else models.build(args.model)).to(device)
    channels, height, width = (spec["input"][k] for k in ("channels", "height", "width"))
    classes = spec["classes"]
    distill = spec.get("vit", {}).get("distillation")
    teacher = models.build(distill["teacher"]).to(device).eval() if distill else None
    alpha = distill["alpha"] if distill else 0.0
    optimizer = optimizer_for(spec, model.parameters())
    student = model
    labels = torch.randint(0, classes, (args.train_batch,), device=device)

    def train_step():
        x = torch.randn(args.train_batch, channels, height, width, device=device)
        student.train()
        out = student(x)
        if teacher is not None:
            with torch.no_grad():
                target = teacher(x).argmax(dim=1)
            class_logits, dist_logits = out
            loss = (1 - alpha) * F.cross_entropy(class_logits, labels) \
                + alpha * F.cross_entropy(dist_logits, target)
        else:
            loss = F.cross_entropy(out, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def infer_step():
        x = torch.randn(args.infer_batch, channels, height, width, device=device)
        student.eval()
        with torch.no_grad():
            student(x)

    train_flops = flops_per_image(train_step, args.train_batch)
    infer_flops = flops_per_image(infer_step, args.infer_batch)
    if args.compile:
        student = torch.compile(model)
    first_train, train = step_seconds(train_step, args.warmup, args.steps, sync)
    first_infer, infer = step_seconds(infer_step, args.warmup, args.steps, sync)
    compiled = {"compile_seconds": (first_train - train) + (first_infer - infer)} \
        if args.compile else {}
    gpu = {"peak_gpu_bytes": torch.cuda.max_memory_allocated()} if args.device == "cuda" else {}
    print(json.dumps({
        "model": args.model,
        "device": args.device,
        "threads": args.threads,
        "train_batch": args.train_batch,
        "infer_batch": args.infer_batch,
        "train_images_per_sec": args.train_batch / train,
        "infer_images_per_sec": args.infer_batch / infer,
        "train_flops_per_image": train_flops,
        "infer_flops_per_image": infer_flops,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        **compiled,
        **gpu,
    }))


if __name__ == "__main__":
    main()
