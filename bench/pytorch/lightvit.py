#!/usr/bin/env python3
"""PyTorch reference for the course's LightViT on MNIST (models/lightvit.yaml).

This is Brian Pulfer's "Vision Transformers from Scratch" MyViT, kept faithful
to the course, including its quirks:

* a softmax in the classification head *and* nn.CrossEntropyLoss on top of it
  (a double softmax); ``--no-softmax-head`` feeds plain logits instead;
* the class token initialised with ``torch.rand`` (uniform [0, 1));
  ``--cls-init trunc_normal`` uses a truncated normal with std 0.02 instead.

Architecture: 28x28x1 -> 7x7 grid of 4x4 patches, each flattened in (c, y, x)
order -> Linear(16, 8); class token prepended; fixed sinusoidal positions for
the 50 tokens; 2 pre-norm blocks (multi-head self-attention with 2 heads, each
with its own Linear(4, 4) q, k, v maps on its 4-dim slice and no output
projection; MLP 8-32-8 with GELU); Linear(8, 10) on the class token.
1,642 trainable parameters.

Training: Adam lr 0.005, batch 128, shuffled, 5 epochs; test accuracy after
every epoch. MNIST is read from the raw IDX files in data/mnist/ and scaled to
[0, 1] with no normalisation (as torchvision's ToTensor does).

Usage: python3 bench/pytorch/lightvit.py [--seed 0] [--no-softmax-head]
           [--cls-init {uniform,trunc_normal}] [--threads 2]
"""

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "mnist"


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------

def read_idx(path: Path) -> np.ndarray:
    """Read an uncompressed IDX file (big-endian header: magic, then dims)."""
    raw = path.read_bytes()
    ndim = raw[3]                      # magic = 0x00 0x00 <dtype> <ndim>
    assert raw[2] == 0x08, "expected unsigned-byte data"
    dims = np.frombuffer(raw, dtype=">u4", count=ndim, offset=4)
    offset = 4 + 4 * ndim              # 16 bytes for images, 8 for labels
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)


def load_mnist(split: str):
    """Images as (N, 1, 28, 28) float32 in [0, 1], labels as int64."""
    prefix = "train" if split == "train" else "t10k"
    x = read_idx(DATA_DIR / f"{prefix}-images-idx3-ubyte")
    y = read_idx(DATA_DIR / f"{prefix}-labels-idx1-ubyte")
    x = torch.from_numpy(x.astype(np.float32) / 255.0).unsqueeze(1)
    y = torch.from_numpy(y.astype(np.int64))
    return x, y


# --------------------------------------------------------------------------
# Model (as in the course)
# --------------------------------------------------------------------------

def patchify(images: torch.Tensor, n_patches: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, n_patches^2, C * p * p); patches in row-major grid
    order, each flattened in (c, y, x) order like the course's loop version."""
    b, c, h, w = images.shape
    p = h // n_patches
    x = images.reshape(b, c, n_patches, p, n_patches, p)   # b c i y j x
    x = x.permute(0, 2, 4, 1, 3, 5)                        # b i j c y x
    return x.reshape(b, n_patches * n_patches, c * p * p)


def sinusoidal_positions(seq_len: int, d: int) -> torch.Tensor:
    """sin(i / 10000^(j/d)) for even j, cos(i / 10000^((j-1)/d)) for odd j."""
    result = torch.ones(seq_len, d)
    for i in range(seq_len):
        for j in range(d):
            result[i][j] = (math.sin(i / (10000 ** (j / d))) if j % 2 == 0
                            else math.cos(i / (10000 ** ((j - 1) / d))))
    return result


class MyMSA(nn.Module):
    """Multi-head self-attention with separate per-head q, k, v maps acting on
    each head's slice of the token; heads are concatenated, no projection."""

    def __init__(self, d: int, n_heads: int = 2):
        super().__init__()
        assert d % n_heads == 0
        self.n_heads = n_heads
        self.d_head = d // n_heads
        self.q_mappings = nn.ModuleList(nn.Linear(self.d_head, self.d_head) for _ in range(n_heads))
        self.k_mappings = nn.ModuleList(nn.Linear(self.d_head, self.d_head) for _ in range(n_heads))
        self.v_mappings = nn.ModuleList(nn.Linear(self.d_head, self.d_head) for _ in range(n_heads))
        self.softmax = nn.Softmax(dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:   # x: (B, N, d)
        heads = []
        for h in range(self.n_heads):
            seq = x[:, :, h * self.d_head:(h + 1) * self.d_head]
            q = self.q_mappings[h](seq)
            k = self.k_mappings[h](seq)
            v = self.v_mappings[h](seq)
            attn = self.softmax(q @ k.transpose(-2, -1) / self.d_head ** 0.5)
            heads.append(attn @ v)
        return torch.cat(heads, dim=-1)


class MyViTBlock(nn.Module):
    """Pre-norm transformer block: x + MSA(LN(x)), then + MLP(LN(.))."""

    def __init__(self, d: int, n_heads: int, mlp_ratio: int = 4):
        super().__init__()
        self.norm1 = nn.LayerNorm(d)
        self.mhsa = MyMSA(d, n_heads)
        self.norm2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(
            nn.Linear(d, mlp_ratio * d),
            nn.GELU(),                      # exact (erf) GELU, PyTorch default
            nn.Linear(mlp_ratio * d, d),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x + self.mhsa(self.norm1(x))
        return out + self.mlp(self.norm2(out))


class MyViT(nn.Module):
    def __init__(self, chw=(1, 28, 28), n_patches=7, n_blocks=2, hidden_d=8,
                 n_heads=2, out_d=10, softmax_head=True, cls_init="uniform",
                 cls_seed=0):
        super().__init__()
        c, h, w = chw
        assert h % n_patches == 0 and w % n_patches == 0
        self.n_patches = n_patches
        patch_dim = c * (h // n_patches) * (w // n_patches)

        # Linear patch embedding: 16 -> 8.
        self.linear_mapper = nn.Linear(patch_dim, hidden_d)

        # Learnable class token. The course uses torch.rand (uniform [0, 1)).
        # The trunc-normal alternative (std 0.02, cut at +-2 std) is drawn from
        # its own generator, after torch.rand has consumed the global RNG as in
        # the course, so every other parameter and the data order stay
        # identical between the two choices for a given seed.
        self.class_token = nn.Parameter(torch.rand(1, hidden_d))
        if cls_init == "trunc_normal":
            gen = torch.Generator().manual_seed(cls_seed)
            nn.init.trunc_normal_(self.class_token, std=0.02, a=-0.04, b=0.04,
                                  generator=gen)
        elif cls_init != "uniform":
            raise ValueError(cls_init)

        # Fixed (non-trainable) sinusoidal positions for 1 + 49 tokens.
        self.register_buffer(
            "positional_embeddings",
            sinusoidal_positions(n_patches ** 2 + 1, hidden_d),
            persistent=False)

        self.blocks = nn.ModuleList(MyViTBlock(hidden_d, n_heads) for _ in range(n_blocks))

        # Classification head on the class token. The course ends it with a
        # softmax, and then applies CrossEntropyLoss to those probabilities.
        head = [nn.Linear(hidden_d, out_d)]
        if softmax_head:
            head.append(nn.Softmax(dim=-1))
        self.mlp = nn.Sequential(*head)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        tokens = self.linear_mapper(patchify(images, self.n_patches))
        cls = self.class_token.expand(tokens.shape[0], 1, -1)
        out = torch.cat([cls, tokens], dim=1) + self.positional_embeddings
        for block in self.blocks:
            out = block(out)
        return self.mlp(out[:, 0])


# --------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------

@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 1000) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(x), batch):
        correct += (model(x[i:i + batch]).argmax(-1) == y[i:i + batch]).sum().item()
    model.train()
    return 100.0 * correct / len(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-softmax-head", action="store_true",
                    help="feed plain logits to CrossEntropyLoss (no double softmax)")
    ap.add_argument("--cls-init", choices=["uniform", "trunc_normal"], default="uniform",
                    help="class token init: torch.rand (course) or trunc normal std 0.02")
    # Intra-op threads. On a machine whose cores are busy with other work, use
    # 1: with 2 threads every tiny op waits for a descheduled worker, which we
    # measured as ~17x slower per step (1.8 s vs 0.1 s) with a job beside it.
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.005)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)

    x_train, y_train = load_mnist("train")
    x_test, y_test = load_mnist("test")

    model = MyViT(softmax_head=not args.no_softmax_head, cls_init=args.cls_init,
                  cls_seed=args.seed)
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f"seed {args.seed}  softmax_head {not args.no_softmax_head}  "
          f"cls_init {args.cls_init}  params {n_params:,}", flush=True)
    assert n_params == 1642, n_params

    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    criterion = nn.CrossEntropyLoss()
    shuffle = torch.Generator().manual_seed(args.seed)

    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        perm = torch.randperm(len(x_train), generator=shuffle)
        total_loss, n_batches = 0.0, 0
        for i in range(0, len(x_train), args.batch_size):   # last batch is partial
            idx = perm[i:i + args.batch_size]
            loss = criterion(model(x_train[idx]), y_train[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total_loss += loss.item()
            n_batches += 1
        acc = evaluate(model, x_test, y_test)
        print(f"epoch {epoch}  train loss {total_loss / n_batches:.4f}  "
              f"test acc {acc:.2f}%  ({time.perf_counter() - start:.1f}s)", flush=True)
    print(f"wall time {time.perf_counter() - start:.1f}s", flush=True)


if __name__ == "__main__":
    main()
