#!/usr/bin/env python3
"""Writes tests/fixtures/parity/<spec>.safetensors for every spec in models/*.yaml.

Each file holds what `cargo test -p vit-runtime --test parity` needs, so that test runs
without PyTorch:

* the weights of the PyTorch reference (bench/pytorch/models.py), under the names the
  Rust model uses (its state_dict, sinusoidal position table included);
* `fixture.input`: 3 images (B, 1, 28, 28), normalised as the spec's recipe does:
  the first 2 test images of the spec's data set and 1 of uniformly random pixels;
* `fixture.logits`: evaluation-mode logits (DeiT: the mean of its two heads), and for
  DeiT also `fixture.class_logits` and `fixture.dist_logits`;
* `fixture.attention`: ViTs only, every block's post-softmax attention weights,
  (B, blocks, heads, tokens, tokens).

Non-weight tensors start with `fixture.` so they cannot be mistaken for weights.

It also writes `lightvit-training.safetensors`, for the training-step test: LightViT with
PyTorch's default init (seed 0) and its recipe's optimiser (Adam, lr 0.005), trained for
20 steps of 16 images drawn from the first 64 MNIST test images. It holds the initial
weights, `fixture.images` (64, 1, 28, 28), `fixture.labels` (64), `fixture.batches`
(20, 16) (indices into the 64), `fixture.losses` (20) and, per trainable tensor,
`fixture.final.<name>`: its value after the 20 steps. Computed in float64.

Weights are drawn from a fixed seed with a deliberately non-trivial init (not PyTorch's
defaults): weights N(0, (1.5 / sqrt(fan_in))^2) so that attention is far from uniform,
LayerNorm gains 1 + N(0, 0.2^2), biases N(0, 0.1^2), tokens and learned positions
N(0, 0.5^2). The expected outputs are computed in float64 from the float32 weights and
input (the exact answer for those numbers), then stored as float32.

Regenerate (needs torch, numpy, PyYAML and the data sets in data/, see
`cargo run -p vit-runtime -- data`):

    python3 bench/pytorch/make_parity_fixtures.py

The files are deterministic for a given PyTorch version (its RNG draws the weights).
"""

import copy
import gzip
import json
import math
import struct
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import models  # noqa: E402  (the reference lives next to this script)

ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = ROOT / "data"
OUT_DIR = ROOT / "tests" / "fixtures" / "parity"
SEED = 7
BATCH = 3
REAL_IMAGES = 2
TRAINING_SEED = 0
TRAINING_STEPS = 20
TRAINING_BATCH = 16
TRAINING_IMAGES = 64


def read_test_images(dataset: str, count: int) -> np.ndarray:
    """The first `count` test images of `dataset` as uint8 (count, 28, 28), raw or .gz IDX."""
    stem = DATA_DIR / dataset / "t10k-images-idx3-ubyte"
    for path, opener in ((stem, open), (stem.with_name(stem.name + ".gz"), gzip.open)):
        if path.exists():
            with opener(path, "rb") as f:
                raw = f.read(16 + count * 28 * 28)
            assert raw[:4] == b"\x00\x00\x08\x03", f"{path} is not an IDX image file"
            return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(count, 28, 28)
    sys.exit(f"no {stem}[.gz]: run `cargo run -p vit-runtime -- data` first")


def make_input(spec: dict, gen: torch.Generator) -> torch.Tensor:
    """(BATCH, 1, 28, 28): real test images, then random pixels, normalised like the recipe."""
    real = torch.from_numpy(read_test_images(spec["train"]["dataset"], REAL_IMAGES).copy())
    noise = torch.randint(0, 256, (BATCH - REAL_IMAGES, 28, 28), generator=gen, dtype=torch.uint8)
    pixels = torch.cat([real, noise]).unsqueeze(1).float() / 255.0
    norm = spec["train"].get("normalize", {})
    return (pixels - norm.get("mean", 0.0)) / norm.get("std", 1.0)


@torch.no_grad()
def randomise(model: nn.Module, gen: torch.Generator) -> None:
    """Overwrites every parameter with the fixture init (see the module docstring)."""
    def normal(t: torch.Tensor, std: float, mean: float = 0.0) -> None:
        t.copy_(torch.randn(t.shape, generator=gen) * std + mean)

    for module in model.modules():
        if isinstance(module, nn.LayerNorm):
            normal(module.weight, 0.2, mean=1.0)
            normal(module.bias, 0.1)
        elif isinstance(module, (nn.Linear, nn.Conv2d, models.HeadLinear)):
            # Inputs per output: in (Linear), in * k * k (Conv2d), head_dim (HeadLinear).
            fan_in = module.weight.shape[-1] if isinstance(module, models.HeadLinear) \
                else module.weight[0].numel()
            normal(module.weight, 1.5 / math.sqrt(fan_in))
            normal(module.bias, 0.1)
    for name in ("cls_token", "dist_token", "pos_embed"):
        tensor = getattr(model, name, None)
        if isinstance(tensor, nn.Parameter):
            normal(tensor, 0.5)


@torch.no_grad()
def expected_outputs(model: nn.Module, x: torch.Tensor) -> dict:
    """Evaluation-mode outputs, computed in float64 on a copy of `model`."""
    exact = copy.deepcopy(model).double().eval()
    x = x.double()
    out = {}
    if isinstance(exact, models.VisionTransformer):
        out["fixture.logits"], out["fixture.attention"] = exact.forward_with_attention(x)
        if exact.distilled:
            out["fixture.class_logits"], out["fixture.dist_logits"] = exact.heads(x)
    else:
        out["fixture.logits"] = exact(x)
    return {k: v.float() for k, v in out.items()}


def save_safetensors(path: Path, tensors: dict, metadata: dict) -> None:
    """A safetensors file: u64 header length, JSON header, then the raw little-endian data."""
    header, chunks, offset = {"__metadata__": metadata}, [], 0
    for name in sorted(tensors):
        data = tensors[name].detach().contiguous().float().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)     # keep the data 8-byte aligned, as the spec advises
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(chunks))


def read_test_labels(dataset: str, count: int) -> np.ndarray:
    """The first `count` test labels of `dataset`, raw or .gz IDX."""
    stem = DATA_DIR / dataset / "t10k-labels-idx1-ubyte"
    for path, opener in ((stem, open), (stem.with_name(stem.name + ".gz"), gzip.open)):
        if path.exists():
            with opener(path, "rb") as f:
                raw = f.read(8 + count)
            assert raw[:4] == b"\x00\x00\x08\x01", f"{path} is not an IDX label file"
            return np.frombuffer(raw, dtype=np.uint8, offset=8)
    sys.exit(f"no {stem}[.gz]: run `cargo run -p vit-runtime -- data` first")


def training_fixture() -> None:
    """LightViT's first TRAINING_STEPS Adam steps from PyTorch's default init, in float64."""
    name = "lightvit"
    spec = models.load_spec(name)
    torch.manual_seed(TRAINING_SEED)
    model = models.build(name)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    images = torch.from_numpy(read_test_images("mnist", TRAINING_IMAGES).copy())
    images = images.unsqueeze(1).float() / 255.0          # the recipe: no normalisation
    labels = torch.from_numpy(read_test_labels("mnist", TRAINING_IMAGES).astype(np.int64))
    gen = torch.Generator().manual_seed(TRAINING_SEED)
    per_pass = TRAINING_IMAGES // TRAINING_BATCH
    batches = torch.cat([torch.randperm(TRAINING_IMAGES, generator=gen).reshape(per_pass, -1)
                         for _ in range(TRAINING_STEPS // per_pass)])

    exact = model.double().train()
    opt = spec["train"]["optimizer"]
    assert opt["kind"] == "adam", opt
    optimizer = torch.optim.Adam(exact.parameters(), lr=opt["lr"])
    losses = []
    for idx in batches:
        loss = nn.functional.cross_entropy(exact(images[idx].double()), labels[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    final = {f"fixture.final.{k}": p.detach().float() for k, p in exact.named_parameters()}
    tensors = {**initial, **final, "fixture.images": images, "fixture.labels": labels.float(),
               "fixture.batches": batches.float(), "fixture.losses": torch.tensor(losses)}
    metadata = {"spec": name, "generator": "bench/pytorch/make_parity_fixtures.py",
                "seed": str(TRAINING_SEED), "torch": torch.__version__}
    path = OUT_DIR / f"{name}-training.safetensors"
    save_safetensors(path, tensors, metadata)
    print(f"{path.relative_to(ROOT)}: {path.stat().st_size / 1e6:.2f} MB, loss "
          f"{losses[0]:.4f} -> {losses[-1]:.4f} in {TRAINING_STEPS} steps")


def main() -> None:
    torch.set_num_threads(1)
    for index, name in enumerate(models.SPECS):
        gen = torch.Generator().manual_seed(SEED * 100 + index)
        spec = models.load_spec(name)
        model = models.build(name).eval()
        randomise(model, gen)
        x = make_input(spec, gen)
        expected = expected_outputs(model, x)
        with torch.no_grad():
            float32 = model(x)      # evaluation mode: DeiT averages its heads
        tensors = {**model.state_dict(), "fixture.input": x, **expected}
        metadata = {"spec": name, "generator": "bench/pytorch/make_parity_fixtures.py",
                    "seed": str(SEED * 100 + index), "torch": torch.__version__}
        path = OUT_DIR / f"{name}.safetensors"
        save_safetensors(path, tensors, metadata)
        drift = (float32 - expected["fixture.logits"]).abs().max().item()
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size / 1e6:.2f} MB, logits "
              f"{expected['fixture.logits'].abs().max().item():.2f} max abs, PyTorch float32 "
              f"vs float64 {drift:.1e}")
    training_fixture()


if __name__ == "__main__":
    main()
