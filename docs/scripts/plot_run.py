"""Plots a training run's metrics.jsonl: the loss curve with the dev loss
(left) and the BLEU / chrF of every validated direction (right).

usage: python3 docs/scripts/plot_run.py runs/demo/metrics.jsonl OUT.png [--title TEXT] [--mark STEP]
                                        [--groups]

With --groups, the right panel shows only the group means of a
many-to-many validation ("bleu/en-x", "bleu/x-en", "bleu/x-y").

Step lines carry "loss"; validation lines carry "val_loss" and
"bleu/<src>-<tgt>", "chrf/<src>-<tgt>" (written by `pipetrain train`).
"""
import argparse
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("metrics")
    parser.add_argument("out")
    parser.add_argument("--title", default="")
    parser.add_argument("--mark", type=int, action="append", default=[],
                        help="draw a vertical line at this step (e.g. where a run resumed)")
    parser.add_argument("--groups", action="store_true",
                        help="plot the group means (en-x, x-en, x-y) rather than every direction")
    args = parser.parse_args()
    rows = [json.loads(line) for line in open(args.metrics) if line.strip()]
    # A resumed run appends again the steps logged after its checkpoint:
    # keep the last line of each step.
    train = sorted({r["step"]: r for r in rows if "loss" in r}.values(), key=lambda r: r["step"])
    valid = sorted({r["step"]: r for r in rows if "val_loss" in r}.values(),
                   key=lambda r: r["step"])
    directions = sorted({k.split("/", 1)[1] for r in valid for k in r if k.startswith("bleu/")})
    is_group = lambda name: "x" in name.split("-")
    directions = [d for d in directions if is_group(d) == args.groups]

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.plot([r["step"] for r in train], [r["loss"] for r in train], label="train loss",
              color="tab:blue", alpha=0.6)
    left.plot([r["step"] for r in valid], [r["val_loss"] for r in valid], "o-",
              label="dev loss", color="tab:red")
    left.set_xlabel("step")
    left.set_ylabel("label-smoothed loss (nats per target token)")
    left.grid(alpha=0.3)
    left.legend()
    for i, direction in enumerate(directions):
        color = f"C{i}"
        steps = [r["step"] for r in valid]
        right.plot(steps, [r.get(f"bleu/{direction}", float("nan")) for r in valid], "o-", color=color,
                   label=f"{direction} BLEU")
        right.plot(steps, [r.get(f"chrf/{direction}", float("nan")) for r in valid], "s--", color=color,
                   alpha=0.6, label=f"{direction} chrF")
    right.set_xlabel("step")
    right.set_ylabel("score (dev, greedy)")
    right.grid(alpha=0.3)
    right.legend(fontsize=7, ncol=2)
    for step in args.mark:
        for ax in (left, right):
            ax.axvline(step, color="gray", linestyle=":", linewidth=1)
    if args.title:
        fig.suptitle(args.title)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)


if __name__ == "__main__":
    main()
