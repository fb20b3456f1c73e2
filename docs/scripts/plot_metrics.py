"""Plots `pipetrain train --metrics FILE` JSON lines: loss against step.

usage: python3 docs/scripts/plot_metrics.py OUT.png LABEL=FILE.jsonl [LABEL=FILE.jsonl ...]
       [--key loss|nll|grad_norm] [--title TEXT]
"""
import argparse
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("runs", nargs="+", help="LABEL=FILE.jsonl")
    parser.add_argument("--key", default="loss")
    parser.add_argument("--title", default="")
    args = parser.parse_args()
    fig, ax = plt.subplots(figsize=(7, 4))
    for run in args.runs:
        label, path = run.split("=", 1)
        rows = [json.loads(line) for line in open(path) if line.strip()]
        rows = [r for r in rows if args.key in r]  # validation lines have other keys
        ax.plot([r["step"] for r in rows], [r[args.key] for r in rows], label=label)
    ax.set_xlabel("step")
    ax.set_ylabel(args.key + (" (nats per target token)" if args.key in ("loss", "nll") else ""))
    if args.title:
        ax.set_title(args.title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)


if __name__ == "__main__":
    main()
