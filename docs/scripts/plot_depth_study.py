#!/usr/bin/env python3
"""Figures and the table of the depth study (bench/depth_study.py).

Reads every cell of a study directory (OUT/<cell>/metrics.jsonl and
OUT/<cell>/result.json) and draws, with one panel per depth and one line per
cell at that depth (the norm, and the rate in a sweep):

    PREFIX_loss.png          training loss (moving mean over 50 steps) by step
    PREFIX_early_update.png  ||F(x;θ_t) − F(x;θ_0)|| over the first steps (log)
    PREFIX_grad_init.png     per-layer gradient norm at step 1, by layer (log)

and prints a markdown table: per cell, the final dev loss, en->de and de->en
chrF, the dev loss at steps 250 and 500 (how fast it learns), the lowest
training loss, the early update after one step, and the
outcome: diverged, stalled (the dev loss moved less than 0.1 nats from the
first validation to the last) or trained.

    python3 docs/scripts/plot_depth_study.py runs/depth_study docs/depth_study
"""
import argparse
import glob
import json
import os
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

SMOOTH_STEPS = 50


def read_cell(cell_dir):
    cell = {"name": os.path.basename(cell_dir), "steps": {}, "early": {}, "valid": {},
            "grad_init": None, "layers": None, "result": None}
    result_path = os.path.join(cell_dir, "result.json")
    if os.path.exists(result_path):
        with open(result_path) as f:
            cell["result"] = json.loads(f.readline())
    metrics = os.path.join(cell_dir, "metrics.jsonl")
    if not os.path.exists(metrics):
        return cell
    first_stats_step = None
    with open(metrics) as f:
        for line in f:
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "layer_stats" in r:
                if first_stats_step is None or r["step"] < first_stats_step:
                    first_stats_step = r["step"]
                    cell["grad_init"] = r["layer_stats"]["grad_norm"]
                    cell["layers"] = r["layer_stats"]["layers"]
            elif "early_update" in r:
                cell["early"][r["step"]] = r["early_update"]
            elif "val_loss" in r:
                cell["valid"][r["step"]] = r
            elif "loss" in r:
                cell["steps"][r["step"]] = r["loss"]  # a resumed step: the last wins
    return cell


def read_study(study_dir):
    cells = [read_cell(d) for d in sorted(glob.glob(os.path.join(study_dir, "*")))
             if os.path.isdir(d)]
    by_depth = {}
    for c in cells:
        found = re.search(r"_(\d+)L(_|$)", c["name"])
        depth = c["result"]["depth"] if c["result"] else int(found.group(1)) if found else 0
        by_depth.setdefault(depth, []).append(c)
    return dict(sorted(by_depth.items()))


def label(cell, depth):
    return cell["name"].replace(f"_{depth}L", "")


COLOURS = {}


def colour(name):
    """The same colour for a norm (and rate) in every panel and figure."""
    if name not in COLOURS:
        COLOURS[name] = plt.get_cmap("tab10")(len(COLOURS) % 10)
    return COLOURS[name]


def smooth(steps, values, window):
    out = []
    for i, s in enumerate(steps):
        near = [v for t, v in zip(steps, values) if s - window < t <= s and v is not None]
        out.append(np.mean(near) if near else np.nan)
    return out


def panels(by_depth, title):
    """One panel per depth, two to a row."""
    n = len(by_depth)
    cols = min(n, 2)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.8 * rows), squeeze=False)
    fig.suptitle(title)
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def style(cell, depth):
    """A cell's line: its label and the colour that label has everywhere."""
    name = label(cell, depth)
    return {"label": name, "color": colour(name), "lw": 1.2}


def finish(fig, axes, path, legend_loc):
    for ax in axes:
        ax.legend(fontsize=6, loc=legend_loc)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_loss(by_depth, path):
    fig, axes = panels(by_depth, f"training loss (mean over {SMOOTH_STEPS} steps)")
    for ax, (depth, cells) in zip(axes, by_depth.items()):
        for c in cells:
            steps = sorted(c["steps"])
            if not steps:
                continue
            values = [c["steps"][s] for s in steps]
            ax.plot(steps, smooth(steps, values, SMOOTH_STEPS), **style(c, depth))
        ax.set_title(f"{depth}+{depth} layers")
        ax.set_xlabel("step")
        ax.set_ylabel("loss (nats/token)")
        ax.grid(alpha=0.3)
    finish(fig, axes, path, "upper right")


def plot_early(by_depth, path):
    fig, axes = panels(by_depth, "early update ||F(x;θ_t) − F(x;θ_0)|| (RMS per target token)")
    for ax, (depth, cells) in zip(axes, by_depth.items()):
        for c in cells:
            steps = [s for s in sorted(c["early"]) if s > 0]
            if steps:
                ax.semilogy(steps, [c["early"][s] for s in steps], **style(c, depth))
        ax.set_title(f"{depth}+{depth} layers")
        ax.set_xlabel("step")
        ax.grid(alpha=0.3, which="both")
    finish(fig, axes, path, "lower right")


def plot_grad_init(by_depth, path):
    fig, axes = panels(by_depth, "gradient norm by layer at step 1")
    for ax, (depth, cells) in zip(axes, by_depth.items()):
        for c in cells:
            if not c["grad_init"]:
                continue
            keep = [i for i, n in enumerate(c["layers"]) if n.startswith(("encoder.", "decoder."))
                    and not n.endswith("final_ln")]
            values = [c["grad_init"][i] for i in keep]
            ax.semilogy(range(len(values)), values, **style(c, depth))
        ax.axvline(depth - 0.5, color="grey", lw=0.8, ls=":")
        ax.set_title(f"{depth}+{depth} layers (encoder | decoder)")
        ax.set_xlabel("layer")
        ax.grid(alpha=0.3, which="both")
    finish(fig, axes, path, "lower right")


# bench/depth_study.py's STALL_NATS: a dev loss that moved less than this
# from the first validation to the last has not learned.
STALL_NATS = 0.1


def outcome(cell):
    """'diverged', 'stalled' or 'trained'."""
    if cell["result"]["diverged"]:
        return "**diverged**"
    losses = [cell["valid"][s]["val_loss"] for s in sorted(cell["valid"])]
    if len(losses) < 2:
        return "ran (too few dev losses to judge)"
    return "**stalled**" if losses[0] - losses[-1] < STALL_NATS else "trained"


def dev_loss_at(cell, step):
    record = cell["valid"].get(step)
    return record["val_loss"] if record else None


def fmt(value, digits=2):
    return "—" if value is None else f"{value:.{digits}f}"


def table(by_depth):
    rows = ["| cell | depth | dev loss | dev loss at 250 / 500 | chrF en→de | chrF de→en | "
            "min train loss | early update @1 | outcome | s/step |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for depth, cells in by_depth.items():
        for c in cells:
            r = c["result"]
            if r is None:
                rows.append(f"| {label(c, depth)} | {depth} | (not finished) | | | | | | | |")
                continue
            chrf = r.get("chrf") or {}
            early1 = c["early"].get(1)
            rows.append(
                f"| {label(c, depth)} | {depth} | {fmt(r.get('val_loss'), 3)} | "
                f"{fmt(dev_loss_at(c, 250), 3)} / {fmt(dev_loss_at(c, 500), 3)} | "
                f"{fmt(chrf.get('en-de'), 1)} | {fmt(chrf.get('de-en'), 1)} | "
                f"{fmt(r.get('min_loss'), 3)} | {fmt(early1, 3)} | "
                f"{outcome(c)} | {fmt(r.get('s_per_step'), 2)} |")
    return "\n".join(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study_dir")
    parser.add_argument("prefix", help="PNG path prefix, e.g. docs/depth_study")
    args = parser.parse_args()
    by_depth = read_study(args.study_dir)
    # Colours in label order, the same whatever the depth.
    for name in sorted({label(c, depth) for depth, cells in by_depth.items() for c in cells}):
        colour(name)
    if not by_depth:
        raise SystemExit(f"plot_depth_study: no cells in {args.study_dir}")
    plot_loss(by_depth, args.prefix + "_loss.png")
    plot_early(by_depth, args.prefix + "_early_update.png")
    plot_grad_init(by_depth, args.prefix + "_grad_init.png")
    print(table(by_depth))


if __name__ == "__main__":
    main()
