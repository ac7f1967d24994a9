#!/usr/bin/env python3
"""Writes tests/fixtures/batch_norm/bn_net.safetensors for `cargo test --test batch_norm`.

The spec `tests/fixtures/batch_norm/bn_net.yaml` (two convs, each followed by a batch norm,
one with PyTorch's defaults and one with eps 1e-3 and momentum 0.3) is built by the
reference of bench/pytorch/models.py, given random weights and running statistics, and run
on a random batch of 4 in float64. The file holds:

* its state_dict in float32, `num_batches_tracked` (int64) included, as PyTorch saves it;
* `fixture.input` (4, 2, 6, 6);
* `fixture.eval_logits`: `model.eval()` logits (the running statistics normalise);
* `fixture.train_logits`: `model.train()` logits (the batch's statistics normalise);
* `fixture.after.<name>`: each running statistic after that one training-mode forward;
* `fixture.upstream` (4, 3) and `fixture.grad.<name>`: the gradient of
  `sum(train_logits * upstream)` with respect to every trainable tensor.

It also checks that PyTorch loads the state_dict without `num_batches_tracked` (what a
vit-rs checkpoint holds) strictly. Regenerate with

    python3 bench/pytorch/make_batch_norm_fixtures.py
"""

import sys
from pathlib import Path

import torch
import yaml
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
import models  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "batch_norm"
SEED = 11


def main() -> None:
    spec = yaml.safe_load((FIXTURES / "bn_net.yaml").read_text())
    torch.manual_seed(SEED)
    model = models.Cnn(spec)
    with torch.no_grad():
        for layer in model.layers:
            if isinstance(layer, torch.nn.BatchNorm2d):
                layer.weight.copy_(1 + 0.3 * torch.randn_like(layer.weight))
                layer.bias.copy_(0.2 * torch.randn_like(layer.bias))
                layer.running_mean.copy_(0.5 * torch.randn_like(layer.running_mean))
                layer.running_var.copy_(torch.empty_like(layer.running_var).uniform_(0.5, 2))
                layer.num_batches_tracked.fill_(3)
    weights = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    x = (2 * torch.randn(4, 2, 6, 6) + 0.5).float()
    upstream = torch.randn(4, 3).float()

    model = model.double()
    model.eval()
    with torch.no_grad():
        eval_logits = model(x.double())
    model.train()
    train_logits = model(x.double())
    (train_logits * upstream.double()).sum().backward()

    out = dict(weights)
    out["fixture.input"] = x
    out["fixture.upstream"] = upstream
    out["fixture.eval_logits"] = eval_logits.float()
    out["fixture.train_logits"] = train_logits.detach().float()
    for name, value in model.state_dict().items():
        if "running_" in name:
            out[f"fixture.after.{name}"] = value.float()
    for name, p in model.named_parameters():
        out[f"fixture.grad.{name}"] = p.grad.float()
    out = {k: v.contiguous() for k, v in out.items()}
    FIXTURES.mkdir(parents=True, exist_ok=True)
    save_file(out, str(FIXTURES / "bn_net.safetensors"))

    # A vit-rs checkpoint has no `num_batches_tracked`: PyTorch fills it in, strict or not.
    fresh = models.Cnn(spec)
    fresh.load_state_dict(
        {k: v for k, v in weights.items() if not k.endswith("num_batches_tracked")}, strict=True)
    print(f"wrote {FIXTURES / 'bn_net.safetensors'} ({len(out)} tensors)")


if __name__ == "__main__":
    main()
