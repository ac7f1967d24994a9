#!/usr/bin/env python3
"""PyTorch reference of every spec in models/*.yaml, built from the same YAML.

Each module mirrors the Rust model that vit-macros generates from the spec, down to
the parameter names (timm's: cls_token, dist_token, pos_embed, patch_embed.proj,
blocks.N.{norm1,attn,norm2,mlp}, norm, head, head_dist; a CNN is an nn.Sequential
called `layers`) and their layouts, so a state_dict saved as safetensors loads into
the Rust model (`vit-runtime eval <spec> --weights FILE`) and back. Matching details:

* patches: row-major grid, each patch flattened in (channel, row, column) order;
  the `conv` tokenizer is Conv2d(C, D, P, stride=P), the `patches` one Linear(C*P*P, D);
* sinusoidal positions: sin(pos / 10000^(i/d)) on even i, cos(pos / 10000^((i-1)/d))
  on odd i, computed in float64 (a persistent buffer: saved, never trained);
* LayerNorm eps the spec's `norm_eps` (default 1e-5), exact (erf) GELU, attention scale 1/sqrt(head_dim), the
  softmax written out (no fused scaled_dot_product_attention), as the Rust layers do;
* `qkv: fused` is timm's Attention (qkv output = [q | k | v], each head-major, then
  proj); `qkv: per_head` is the course's MyMSA (head h maps its own slice through
  its own q, k, v; no projection), stored stacked: weight (H, DH, DH), bias (H, DH);
* DeiT: training returns (head(cls), head_dist(dist)), evaluation their mean.

Usage: python3 bench/pytorch/models.py   (prints each spec's parameter count, to
compare with `cargo run -p vit-runtime -- models`)
"""

import math
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
# The specs with committed parity fixtures (their order seeds the fixtures' weights).
SPECS = ("lightvit", "vit", "deit", "cnn")
# Every spec of the folder, as vit-rs compiles them.
ALL_SPECS = tuple(sorted(p.stem for p in MODELS_DIR.glob("*.yaml")))


def load_spec(name: str) -> dict:
    """The parsed `models/<name>.yaml`."""
    return yaml.safe_load((MODELS_DIR / f"{name}.yaml").read_text())


# --------------------------------------------------------------------------
# Vision transformers
# --------------------------------------------------------------------------

def extract_patches(x: torch.Tensor, p: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, (H/p)*(W/p), C*p*p): row-major grid, (c, y, x) inside a patch."""
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(b, (h // p) * (w // p), c * p * p)


def sinusoidal_table(seq_len: int, d: int) -> torch.Tensor:
    """(seq_len, d) fixed positions of Vaswani et al., as the course computes them."""
    table = [[(math.sin if i % 2 == 0 else math.cos)(pos / 10000 ** ((i - i % 2) / d))
              for i in range(d)] for pos in range(seq_len)]
    return torch.tensor(table, dtype=torch.float64).float()


def learned(std: float, *shape: int) -> nn.Parameter:
    """A learned token or position table: timm's trunc_normal_ (bounds [-2, 2], absolute)."""
    return nn.Parameter(nn.init.trunc_normal_(torch.empty(*shape), std=std))


class PatchEmbed(nn.Module):
    """Image -> (B, N, D) tokens; `proj` is a stride-P conv or a linear map of patches."""

    def __init__(self, tokenizer: str, channels: int, patch: int, dim: int):
        super().__init__()
        self.patch = patch
        self.tokenizer = tokenizer
        if tokenizer == "conv":
            self.proj = nn.Conv2d(channels, dim, kernel_size=patch, stride=patch)
        elif tokenizer == "patches":
            self.proj = nn.Linear(channels * patch * patch, dim)
        else:
            raise ValueError(f"unknown tokenizer {tokenizer!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.tokenizer == "conv":
            return self.proj(x).flatten(2).transpose(1, 2)
        return self.proj(extract_patches(x, self.patch))


def attend(q, k, v, attn_drop: nn.Dropout):
    """softmax(q k^T / sqrt(dh)) v on (B, H, S, dh); also returns the weights (pre-dropout)."""
    weights = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)
    weights = weights.softmax(dim=-1)
    return attn_drop(weights) @ v, weights


class Attention(nn.Module):
    """timm's Attention: fused qkv Linear(D, 3D), heads split from it, output proj."""

    def __init__(self, dim: int, heads: int, attn_drop: float, proj_drop: float):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor):
        b, s, d = x.shape
        qkv = self.qkv(x).reshape(b, s, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out, weights = attend(qkv[0], qkv[1], qkv[2], self.attn_drop)
        out = out.transpose(1, 2).reshape(b, s, d)
        return self.proj_drop(self.proj(out)), weights


class HeadLinear(nn.Module):
    """H independent Linear(DH, DH), stacked: weight (H, DH out, DH in), bias (H, DH)."""

    def __init__(self, heads: int, head_dim: int):
        super().__init__()
        bound = 1 / math.sqrt(head_dim)     # nn.Linear's default init
        self.weight = nn.Parameter(torch.empty(heads, head_dim, head_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(heads, head_dim).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., H, DH) -> (..., H, DH): head h through its own map."""
        return torch.einsum("...hi,hoi->...ho", x, self.weight) + self.bias


class PerHeadAttention(nn.Module):
    """The course's MyMSA: per-head q, k, v maps on each head's slice, no projection."""

    def __init__(self, dim: int, heads: int, attn_drop: float):
        super().__init__()
        self.heads = heads
        self.q = HeadLinear(heads, dim // heads)
        self.k = HeadLinear(heads, dim // heads)
        self.v = HeadLinear(heads, dim // heads)
        self.attn_drop = nn.Dropout(attn_drop)

    def forward(self, x: torch.Tensor):
        b, s, d = x.shape
        x = x.reshape(b, s, self.heads, d // self.heads)
        q, k, v = (m(x).transpose(1, 2) for m in (self.q, self.k, self.v))   # (B, H, S, DH)
        out, weights = attend(q, k, v, self.attn_drop)
        return out.transpose(1, 2).reshape(b, s, d), weights


class DropPath(nn.Module):
    """Stochastic depth (timm): drops a residual branch for whole samples in training."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty(x.shape[0], *([1] * (x.dim() - 1))).bernoulli_(keep)
        return x * mask / keep


class Mlp(nn.Module):
    """fc1 -> activation -> dropout -> fc2 -> dropout (timm's Mlp)."""

    def __init__(self, dim: int, hidden: int, activation: str, drop: float):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.act = {"gelu": nn.GELU(), "relu": nn.ReLU()}[activation]
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class Block(nn.Module):
    """Pre-norm encoder block: x + attn(norm1(x)), then + mlp(norm2(x))."""

    def __init__(self, dim, heads, hidden, qkv, activation, drop, attn_drop, drop_path, eps):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        if qkv == "fused":
            self.attn = Attention(dim, heads, attn_drop, drop)
        elif qkv == "per_head":
            self.attn = PerHeadAttention(dim, heads, attn_drop)
        else:
            raise ValueError(f"unknown qkv {qkv!r}")
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, hidden, activation, drop)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor):
        a, weights = self.attn(self.norm1(x))
        x = x + self.drop_path(a)
        return x + self.drop_path(self.mlp(self.norm2(x))), weights


class VisionTransformer(nn.Module):
    """ViT / DeiT / LightViT from a spec's `vit:` section."""

    def __init__(self, spec: dict):
        super().__init__()
        v = spec["vit"]
        c, h, w = (spec["input"][k] for k in ("channels", "height", "width"))
        dim, depth, heads, patch = v["embed_dim"], v["depth"], v["heads"], v["patch"]
        hidden = v.get("mlp_hidden") or int(round(v["mlp_ratio"] * dim))
        self.pooling = v.get("pooling", "cls")
        self.distilled = v.get("distillation") is not None
        self.prefix = int(self.pooling == "cls") + int(self.distilled)
        tokens = self.prefix + (h // patch) * (w // patch)
        drop = v.get("dropout", 0.0)
        drop_path = v.get("drop_path", 0.0)
        std = v.get("init_std", 0.02)
        eps = v.get("norm_eps", 1e-5)

        self.patch_embed = PatchEmbed(v["tokenizer"], c, patch, dim)
        if self.pooling == "cls":
            self.cls_token = learned(std, 1, 1, dim)
        if self.distilled:
            self.dist_token = learned(std, 1, 1, dim)
        if v["positions"] == "learned":
            self.pos_embed = learned(std, 1, tokens, dim)
        else:
            self.register_buffer("pos_embed", sinusoidal_table(tokens, dim)[None])
        self.pos_drop = nn.Dropout(drop)
        rates = [drop_path * i / (depth - 1) if depth > 1 else drop_path for i in range(depth)]
        self.blocks = nn.ModuleList(
            Block(dim, heads, hidden, v.get("qkv", "fused"), v.get("activation", "gelu"),
                  drop, v.get("attention_dropout", 0.0), rate, eps) for rate in rates)
        self.norm = nn.LayerNorm(dim, eps=eps) if v.get("final_norm", True) else nn.Identity()
        self.head = nn.Linear(dim, spec["classes"])
        if self.distilled:
            self.head_dist = nn.Linear(dim, spec["classes"])

    def features(self, x: torch.Tensor):
        """Final token states (B, S, D) and each block's attention weights (B, H, S, S)."""
        x = self.patch_embed(x)
        prefix = []
        if self.pooling == "cls":
            prefix.append(self.cls_token)
        if self.distilled:
            prefix.append(self.dist_token)
        x = torch.cat([t.expand(x.shape[0], -1, -1) for t in prefix] + [x], dim=1)
        x = self.pos_drop(x + self.pos_embed)
        maps = []
        for block in self.blocks:
            x, weights = block(x)
            maps.append(weights)
        return self.norm(x), maps

    def heads(self, x: torch.Tensor):
        """Class logits and, for DeiT, the distillation logits (else None)."""
        x, _ = self.features(x)
        return self._heads(x)

    def _heads(self, x: torch.Tensor):
        pooled = x[:, 0] if self.pooling == "cls" else x.mean(dim=1)
        return self.head(pooled), (self.head_dist(x[:, 1]) if self.distilled else None)

    def forward(self, x: torch.Tensor):
        """Logits; DeiT: (class, distillation) in training, their mean in evaluation."""
        class_logits, dist_logits = self.heads(x)
        if dist_logits is None:
            return class_logits
        if self.training:
            return class_logits, dist_logits
        return (class_logits + dist_logits) / 2

    def forward_with_attention(self, x: torch.Tensor):
        """Eval-style logits and attention maps (B, blocks, heads, S, S)."""
        x, maps = self.features(x)
        class_logits, dist_logits = self._heads(x)
        logits = class_logits if dist_logits is None else (class_logits + dist_logits) / 2
        return logits, torch.stack(maps, dim=1)


# --------------------------------------------------------------------------
# CNNs
# --------------------------------------------------------------------------

class Cnn(nn.Module):
    """A spec's `cnn.layers`, in order, as an nn.Sequential named `layers`."""

    def __init__(self, spec: dict):
        super().__init__()
        layers = []
        for layer in spec["cnn"]["layers"]:
            (kind, args), = layer.items() if isinstance(layer, dict) else [(layer, None)]
            if kind == "conv":
                layers.append(nn.Conv2d(args["in"], args["out"], args["kernel"],
                                        stride=args.get("stride", 1),
                                        padding=args.get("padding", 0)))
            elif kind == "batch_norm":
                layers.append(nn.BatchNorm2d(args["features"], eps=args.get("eps", 1e-5),
                                             momentum=args.get("momentum", 0.1)))
            elif kind in ("max_pool", "avg_pool"):
                pool = nn.MaxPool2d if kind == "max_pool" else nn.AvgPool2d
                layers.append(pool(args["kernel"], stride=args.get("stride") or args["kernel"]))
            elif kind == "linear":
                layers.append(nn.Linear(args["in"], args["out"]))
            elif kind == "dropout":
                layers.append(nn.Dropout(args))
            elif kind in ("relu", "gelu", "flatten"):
                layers.append({"relu": nn.ReLU, "gelu": nn.GELU, "flatten": nn.Flatten}[kind]())
            else:
                raise ValueError(f"unknown CNN layer {kind!r}")
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def build(name: str) -> nn.Module:
    """The model of `models/<name>.yaml`, PyTorch-initialised."""
    spec = load_spec(name)
    return VisionTransformer(spec) if "vit" in spec else Cnn(spec)


def trainable_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


if __name__ == "__main__":
    for spec_name in SPECS:
        print(f"{spec_name:<10} {trainable_params(build(spec_name)):>10,} trainable parameters")
