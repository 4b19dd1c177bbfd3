"""Which choices of the paper's backprop benchmark cost accuracy?  One JSON line per (variant, N).

    python experiments/backprop_variants.py --hidden 10 100 --epochs 20 --seeds 0

Variants (all: the same split, Adam lr 0.001, batch 1024, setup-1 dense lateral connectivity,
two presentations, hidden units sampled in training and evaluation):

- ``harness``: :class:`~infomorphic.train.baselines.BackpropNetwork` (``backprop_variant =
  "harness"``, the baseline of a setup-1 run): +-1 units, the lateral input added to the drive,
  softmax cross-entropy of the linear readout drive;
- ``paper``: :class:`~infomorphic.train.baselines.PaperBackpropNetwork` (``backprop_variant =
  "paper"``): the authors' benchmark, 0/1 units, the trivariate activation with the label as a
  context during training and the lateral input as modulators, cross-entropy of the readout's
  sigmoid probabilities;
- ``paper-logits``: the same with the cross-entropy of the linear drive (``bounded_logits = False``);
- ``paper-no-label``: the same without the label context (``label_context = False``);
- ``paper-logits-no-label``: both changes.

The final epoch's train (10000 fixed training samples), validation and test accuracy per row,
and the seconds per epoch.  Never imported by the package.
"""

from __future__ import annotations

import argparse
import json
import statistics

VARIANTS = ("harness", "paper", "paper-logits", "paper-no-label", "paper-logits-no-label")


def run(variant: str, hidden: int, epochs: int, seed: int, dataset: str) -> dict:
    import torch

    from infomorphic.data import load_dataset
    from infomorphic.nn.functional import lateral_mask
    from infomorphic.seeding import generator
    from infomorphic.train.baselines import (
        BackpropNetwork,
        PaperBackpropNetwork,
        accuracy,
        fit_backprop,
    )

    splits = load_dataset(dataset, seed=seed)
    train = (splits.train.x, splits.train.y)
    mask = lateral_mask(hidden, None, generator(seed, "backprop-lateral"))
    init = generator(seed, "backprop-init")
    model: torch.nn.Module
    if variant == "harness":
        model = BackpropNetwork(train[0].shape[1], splits.n_classes, hidden, mask, init)
    else:
        model = PaperBackpropNetwork(
            train[0].shape[1],
            splits.n_classes,
            hidden,
            mask,
            init,
            bounded_logits="logits" not in variant,
            label_context="no-label" not in variant,
        )
    sub = torch.randperm(len(train[0]), generator=generator(seed, "train-eval"))[:10000].sort().values
    parts = {
        "val": (splits.val.x, splits.val.y),
        "test": (splits.test.x, splits.test.y),
        "train": (train[0][sub], train[1][sub]),
    }
    gen = generator(seed, "backprop-eval")

    @torch.no_grad()
    def evaluate(m: torch.nn.Module) -> dict[str, float]:
        return {f"{k}_acc": accuracy(m(x, gen).argmax(1), y) for k, (x, y) in parts.items()}

    hist = fit_backprop(
        model,
        train,
        evaluate,
        epochs=epochs,
        batch_size=1024,
        lr=0.001,
        seed_generator=lambda *n, device="cpu": generator(seed, *n, device=device),
    )
    last = hist[-1]
    return {
        "variant": variant,
        "hidden": hidden,
        "seed": seed,
        "epochs": epochs,
        "train_acc": last["train_acc"],
        "val_acc": last["val_acc"],
        "test_acc": last["test_acc"],
        "seconds_per_epoch": statistics.median(m["train_seconds"] for m in hist),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hidden", nargs="+", type=int, default=[10, 100])
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    rows = []
    for hidden in args.hidden:
        for variant in args.variants:
            for seed in args.seeds:
                row = run(variant, hidden, args.epochs, seed, args.dataset)
                rows.append(row)
                print(json.dumps(row), flush=True)
    print(json.dumps({"experiment": "backprop_variants", "rows": rows}))


if __name__ == "__main__":
    main()
