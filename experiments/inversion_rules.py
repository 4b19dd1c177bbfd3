"""Test accuracy of trained runs under three readings of the readout's inverted neurons.

PID cannot tell a neuron from its negation, so a readout neuron may learn to fire for every
class but its own.  The papers read a neuron as inverted when its mean firing probability over
the evaluated samples is >= 0.5 (``paper``); with one or two hidden neurons the readout cannot be
selective, fires for about half the samples, and that rule guesses the sign at random.
``class`` decides it from the training labels (:func:`infomorphic.nn.class_inversion`: inverted
when the neuron fires less for its own class than for the others); ``none`` inverts nothing.

    python experiments/inversion_rules.py runs/size-sweep/mnist-setup3-n1-seed0 ...

One JSON line per run: the three test accuracies (fractions) and the neurons each rule inverts.
The readout is evaluated once on the training and test sets with the context withheld (one
stochastic pass: accuracies differ from the run's own by sampling noise).  Backprop runs keep
no weights and are skipped.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch


def evaluate(run_dir: Path, batch: int = 1024) -> dict:
    """The three accuracies of one finished infomorphic run directory."""
    from infomorphic.goalsearch.report import load_run
    from infomorphic.nn import class_inversion, predict
    from infomorphic.nn.network import mean_inversion
    from infomorphic.train.trainer import readout_theta

    run = load_run(run_dir)
    gen = torch.Generator().manual_seed(0)
    theta_train = readout_theta(run.net, run.data.train.x, batch, gen)
    theta_test = readout_theta(run.net, run.data.test.x, batch, gen)
    y = run.data.test.y
    by_class = class_inversion(theta_train, run.data.train.y)

    def acc(pred: torch.Tensor) -> float:
        return float((pred == y).float().mean())

    return {
        "run": run_dir.name,
        "paper": acc(predict(theta_test)),
        "none": acc(theta_test.argmax(1)),
        "class": acc(predict(theta_test, by_class)),
        "paper_inverts": mean_inversion(theta_test).int().tolist(),
        "class_inverts": by_class.int().tolist(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", nargs="+", type=Path, help="finished infomorphic run directories")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    failed = 0
    for run_dir in args.runs:
        try:
            print(json.dumps(evaluate(run_dir)), flush=True)
        except ValueError as exc:  # not a finished infomorphic run (e.g. a backprop run)
            print(f"{run_dir}: skipped: {exc}", file=sys.stderr)
            failed += 1
    return 1 if failed == len(args.runs) else 0


if __name__ == "__main__":
    sys.exit(main())
