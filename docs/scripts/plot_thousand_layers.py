#!/usr/bin/env python3
"""The 1,000-layer runs of bench/thousand_layers.sh side by side.

Left: the training loss of each run (a 25-step moving mean of the logged
steps). Right: the per-layer gradient norm (train.layer_stats_interval) at
two recorded steps (--steps, default 10,200), layers in global order
(encoder 0..499, then decoder 0..499), on a log scale; values below 1e-45 (f32 underflow) are drawn there.

    python3 docs/scripts/plot_thousand_layers.py OUT.png RUN_DIR [RUN_DIR...] [--steps 10,200]
"""
import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from plot_depth_study import smooth  # noqa: E402  (the grid's trailing-window mean)

FLOOR = 1e-45


def read(run_dir):
    losses, stats = {}, {}
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        for line in f:
            if not line.strip():
                continue
            entry = json.loads(line)
            if "loss" in entry and "step" in entry:
                losses[entry["step"]] = entry["loss"]
            if "layer_stats" in entry:
                stats[entry["step"]] = entry["layer_stats"]
    return losses, stats


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--steps", default="10,200",
                        help="two recorded steps whose per-layer gradients are drawn")
    args = parser.parse_args()
    steps_drawn = [int(x) for x in args.steps.split(",")]
    drawn = 0
    fig, (loss_ax, grad_ax) = plt.subplots(1, 2, figsize=(13, 4.5))
    for index, run in enumerate(args.runs):
        name = os.path.basename(os.path.normpath(run))
        color = f"C{index}"  # one colour a run; the step is the line style
        losses, stats = read(run)
        steps = sorted(losses)
        loss_ax.plot(steps, smooth(steps, [losses[s] for s in steps], 25), color=color,
                     label=name)
        for step, style in zip(steps_drawn, ("-", ":")):
            if step not in stats:
                print(f"{run}: no layer_stats at step {step}")
                continue
            drawn += 1
            grads = [max(g, FLOOR) if g is not None else None for g in stats[step]["grad_norm"]]
            layers = [i for i, g in enumerate(grads) if g is not None]
            grad_ax.plot(layers, [grads[i] for i in layers], style, color=color,
                         label=f"{name}, step {step}")
    loss_ax.set_xlabel("step")
    loss_ax.set_ylabel("training loss (25-step mean)")
    loss_ax.legend()
    grad_ax.set_yscale("log")
    grad_ax.set_xlabel("layer (0 = embedding, then encoder 0..499, decoder 0..499)")
    grad_ax.set_ylabel("gradient norm")
    grad_ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out} ({drawn} gradient profiles)")


if __name__ == "__main__":
    main()
