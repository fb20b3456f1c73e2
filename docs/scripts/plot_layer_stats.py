#!/usr/bin/env python3
"""Depth x step heatmaps of the per-layer statistics in a metrics.jsonl.

A run with `train.layer_stats_interval: N` writes, every N steps, a line
{"step": S, "layer_stats": {"layers": [...], "grad_norm": [...],
"update_ratio": [...], "residual_rms": [...]}} (null where a value does not
apply). This draws one panel per statistic: layers (global order, input at
the top) down, recorded steps across, colour on a log10 scale.

    python3 docs/scripts/plot_layer_stats.py runs/NAME/metrics.jsonl out.png
"""
import argparse
import json
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

STATS = [
    ("grad_norm", "gradient norm"),
    ("update_ratio", "relative update ||dW|| / ||W||"),
    ("residual_rms", "residual-stream RMS"),
]


def read(path):
    steps, records = [], []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            entry = json.loads(line)
            if "layer_stats" in entry:
                steps.append(entry["step"])
                records.append(entry["layer_stats"])
    if not records:
        raise SystemExit(f"{path} has no layer_stats lines (set train.layer_stats_interval)")
    return steps, records


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("metrics", help="metrics.jsonl of a run")
    parser.add_argument("output", help="PNG to write")
    parser.add_argument("--title", default="", help="figure title")
    args = parser.parse_args()
    steps, records = read(args.metrics)
    layers = records[-1]["layers"]
    fig, axes = plt.subplots(1, len(STATS), figsize=(4.2 * len(STATS), 0.6 + 0.22 * len(layers) + 1.2),
                             squeeze=False)
    for ax, (key, label) in zip(axes[0], STATS):
        grid = np.full((len(layers), len(steps)), np.nan)
        for j, rec in enumerate(records):
            index = {name: i for i, name in enumerate(rec["layers"])}
            for i, name in enumerate(layers):
                if name in index:
                    v = rec[key][index[name]]
                    if v is not None and v > 0 and math.isfinite(v):
                        grid[i, j] = math.log10(v)
        image = ax.imshow(grid, aspect="auto", interpolation="nearest", cmap="viridis",
                          extent=(steps[0] - 0.5, steps[-1] + 0.5, len(layers) - 0.5, -0.5)
                          if len(steps) > 1 else None)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("step")
        ax.set_yticks(range(len(layers)))
        ax.set_yticklabels(layers if len(layers) <= 40 else
                           [n if i % max(1, len(layers) // 20) == 0 else "" for i, n in enumerate(layers)],
                           fontsize=6)
        fig.colorbar(image, ax=ax, label="log10")
    if args.title:
        fig.suptitle(args.title, fontsize=10)
    fig.tight_layout()
    fig.savefig(args.output, dpi=80)


if __name__ == "__main__":
    main()
