"""Fixtures for `--adapt`: timm's own adaptation of a small ViT's weights to other sizes.

A ViT with timm's naming (image 32, patch 8, 3 channels, width 16, depth 1, 2 heads, 5
classes) gets random weights of unit scale (so that a wrong interpolation weight shows); then
timm adapts them, exactly as `timm.create_model(..., pretrained=True, img_size=, in_chans=,
num_classes=)` does (`checkpoint_filter_fn`: `resample_patch_embed` and
`resample_abs_pos_embed`; then `adapt_input_conv`), to two targets:

- `small`: image 24, patch 4 (grid 4x4 -> 6x6, kernel 8x8 -> 4x4), 1 channel (summed);
- `wide`:  image 48, patch 12 (grid 4x4 -> 4x4, kernel 8x8 -> 12x12), 2 channels (repeated
  and scaled).

Writes `tests/fixtures/adapt/source.safetensors` (the source weights) and
`tests/fixtures/adapt/<target>.safetensors`: the adapted `pos_embed` and
`patch_embed.proj.weight`, and `fixture.input` / `fixture.logits`, timm's logits of the
target model with the adapted weights (its other tensors are the source's) on fixed images.
`tests/adapt.rs` compares vit-rs's adaptation with these, without PyTorch.

    python3 bench/pytorch/make_adapt_fixtures.py      # torch, timm (--no-deps), safetensors
"""

import os

import torch
from safetensors.torch import save_file
from timm.models import VisionTransformer
from timm.models._manipulate import adapt_input_conv
from timm.models.vision_transformer import checkpoint_filter_fn

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "adapt")
COMMON = dict(embed_dim=16, depth=1, num_heads=2, mlp_ratio=2.0, num_classes=5)
TARGETS = {"small": dict(img_size=24, patch_size=4, in_chans=1),
           "wide": dict(img_size=48, patch_size=12, in_chans=2)}


def main():
    torch.manual_seed(0)
    source = VisionTransformer(img_size=32, patch_size=8, in_chans=3, **COMMON).eval()
    with torch.no_grad():
        for p in source.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
    weights = {k: v.contiguous() for k, v in source.state_dict().items()}
    os.makedirs(OUT, exist_ok=True)
    save_file(weights, os.path.join(OUT, "source.safetensors"))

    for name, size in TARGETS.items():
        target = VisionTransformer(**size, **COMMON).eval()
        adapted = checkpoint_filter_fn(dict(weights), target)
        key = "patch_embed.proj.weight"
        adapted[key] = adapt_input_conv(size["in_chans"], adapted[key])
        target.load_state_dict(adapted)
        side = size["img_size"]
        images = torch.randn(2, size["in_chans"], side, side, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            logits = target(images)
        tensors = {
            "pos_embed": adapted["pos_embed"],
            key: adapted[key],
            "fixture.input": images,
            "fixture.logits": logits,
        }
        save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(OUT, f"{name}.safetensors"))
        print(name, {k: tuple(v.shape) for k, v in tensors.items()})


if __name__ == "__main__":
    main()
