#!/usr/bin/env python3
"""The depth study's grid, one command (issue 14 section 2).

    python3 bench/depth_study.py [--grid full|lr_sweep|smoke] [--out runs/depth_study]
                                 [--norms A,B] [--depths 6,18] [--steps N]
                                 [--lr X | --lrs X,Y,...] [--set FIELD=VALUE --tag NAME]
                                 [--spec FILE] [--binary PATH]

Trains configs/depth_study.pbtxt once per (norm, depth) cell with the same
learning rate, warm-up, token budget and seed (--lrs: once per rate too, the
sweep that chose the rate), each in OUT/<cell>/ (its own
checkpoints, metrics.jsonl and TensorBoard events). Resumable: a finished
cell (OUT/<cell>/result.json) is skipped, an interrupted one resumes from its
latest checkpoint (pipetrain does that by itself). After each cell it prints
one JSON line with the cell's cost and outcome and appends it to
OUT/summary.jsonl:

    {"cell":"POST_LN_18L","norm":"POST_LN","depth":18,"exit":0,"diverged":false,
     "steps":1000,"wall_s":812.4,"s_per_step":0.81,"first_loss":..,"final_loss":..,
     "min_loss":..,"skipped_steps":0,"grad_norm_at_init":[...per layer...]}

A cell has diverged when pipetrain stopped it (exit 3: max_skipped_steps
non-finite steps in a row) or its loss blew up (the last logged loss above
twice the lowest one); it has stalled when its dev loss moved less than
STALL_NATS from the first validation to the last (stuck at the unigram
loss). Long runs are not part of CI.
"""
import argparse
import json
import os
import subprocess
import sys
import time

NORMS = [
    ("POST_LN", []),
    ("PRE_LN", []),
    ("DEEPNORM", []),
    ("BRANCHNORM_LINEAR", ["norm=BRANCHNORM", "branch_norm.shape=LINEAR_SCALE",
                           "branch_norm.max_norm_step=100"]),
    ("BRANCHNORM_POWER", ["norm=BRANCHNORM", "branch_norm.shape=NORMALIZED_POWER",
                          "branch_norm.max_norm_step=100"]),
    ("NORMFORMER", []),
    ("FOUNDATION_LN", []),
    ("SUBLN", []),
]
GRIDS = {
    "full": ([n for n, _ in NORMS], [6, 18, 50, 100]),
    # The learning-rate sweep that picks the grid's rate: the two norms
    # DeepNet contrasts, at the depths where Post-LN is said to start failing.
    "lr_sweep": (["POST_LN", "DEEPNORM"], [18, 50]),
    "smoke": (["POST_LN", "DEEPNORM"], [2]),
}
# Steps over which DeepNet's early-update measure ||F(x;θ_t) − F(x;θ_0)|| is
# recorded (train.early_update_steps): the first part of warm-up, where
# Post-LN's output moves most.
EARLY_UPDATE_STEPS = 60


def overrides_for(norm):
    for name, extra in NORMS:
        if name == norm:
            return extra if extra else [f"norm={norm}"]
    raise SystemExit(f"depth_study: unknown norm {norm}")


def read_metrics(path):
    """Step lines, layer-stats lines, early-update lines and validation lines."""
    steps, layer_stats, early, valid = [], [], [], []
    if not os.path.exists(path):
        return steps, layer_stats, early, valid
    with open(path) as f:
        for line in f:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a kill
            if "layer_stats" in record:
                layer_stats.append(record)
            elif "early_update" in record:
                early.append(record)
            elif "val_loss" in record:
                valid.append(record)
            elif "grad_norm" in record:
                steps.append(record)

    # A resumed cell logs the steps after its checkpoint again: keep the last.
    def last_by_step(records):
        by_step = {r["step"]: r for r in records}
        return [by_step[s] for s in sorted(by_step)]
    return last_by_step(steps), layer_stats, last_by_step(early), last_by_step(valid)


def resumed_step(out_dir):
    """The step the cell's latest checkpoint holds (0 for a fresh cell)."""
    try:
        with open(os.path.join(out_dir, "latest")) as f:
            return int(f.read().strip().rsplit("_", 1)[-1])
    except (OSError, ValueError):
        return 0


# A cell that neither diverged nor learned: its dev loss moved less than this
# (nats per token) from the first validation to the last. Post-LN at depth
# sits at the unigram loss (~6.6 here) for the whole budget.
STALL_NATS = 0.1


def stalled(valid):
    losses = [r["val_loss"] for r in valid if r.get("val_loss") is not None]
    return len(losses) >= 2 and losses[0] - losses[-1] < STALL_NATS


def summarise(cell, norm, depth, lr, exit_code, wall_s, out_dir, start_step):
    steps, layer_stats, early, valid = read_metrics(os.path.join(out_dir, "metrics.jsonl"))
    losses = [r["loss"] for r in steps if r.get("loss") is not None]
    blown_up = bool(losses) and losses[-1] > 2 * min(losses)
    first_stats = min(layer_stats, key=lambda r: r["step"]) if layer_stats else None
    last_valid = valid[-1] if valid else {}
    return {
        "cell": cell, "norm": norm, "depth": depth, "lr": lr, "exit": exit_code,
        "diverged": exit_code == 3 or blown_up,
        "stalled": stalled(valid),
        "steps": steps[-1]["step"] if steps else 0,
        "wall_s": round(wall_s, 1),
        # This invocation's wall time over the steps it ran (a resumed cell
        # ran only those after its checkpoint).
        "s_per_step": (round(wall_s / (steps[-1]["step"] - start_step), 3)
                       if steps and steps[-1]["step"] > start_step else None),
        "first_loss": losses[0] if losses else None,
        "final_loss": losses[-1] if losses else None,
        "min_loss": min(losses) if losses else None,
        "skipped_steps": steps[-1].get("skipped_steps", 0) if steps else 0,
        "val_loss": last_valid.get("val_loss"),
        "val_nll": last_valid.get("val_nll"),
        # Per direction; the group averages ("en-x", "x-en") are left out.
        "bleu": {k[5:]: v for k, v in last_valid.items() if k.startswith("bleu/")
                 and "x" not in k[5:].split("-")},
        "chrf": {k[5:]: v for k, v in last_valid.items() if k.startswith("chrf/")
                 and "x" not in k[5:].split("-")},
        "early_update": [[r["step"], r["early_update"]] for r in early],
        "grad_norm_at_init": first_stats["layer_stats"]["grad_norm"] if first_stats else None,
        "layers": first_stats["layer_stats"]["layers"] if first_stats else None,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid", choices=sorted(GRIDS), default="full")
    parser.add_argument("--out", default="runs/depth_study")
    parser.add_argument("--spec", default="configs/depth_study.pbtxt")
    parser.add_argument("--binary", default="build/launcher/pipetrain")
    parser.add_argument("--steps", type=int, default=None)
    rate = parser.add_mutually_exclusive_group()
    rate.add_argument("--lr", type=float, default=None,
                      help="the rate for every cell (default: the spec's)")
    rate.add_argument("--lrs", default="",
                      help="comma-separated rates: one cell per rate (the sweep)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="one more spec override for every cell (after the norm's)")
    parser.add_argument("--tag", default="",
                        help="appended to each cell's name, to keep a variant apart")
    parser.add_argument("--norms", default="", help="comma-separated subset of the grid's norms")
    parser.add_argument("--depths", default="", help="comma-separated subset of the grid's depths")
    args = parser.parse_args()

    norms, depths = GRIDS[args.grid]
    if args.norms:
        norms = [n for n in norms if n in args.norms.split(",")]
    if args.depths:
        depths = [d for d in depths if str(d) in args.depths.split(",")]
    steps = args.steps if args.steps is not None else (4 if args.grid == "smoke" else None)
    os.makedirs(args.out, exist_ok=True)
    lrs = [float(x) for x in args.lrs.split(",") if x] or [args.lr]
    cells = [(depth, norm, lr) for depth in depths for norm in norms for lr in lrs]
    for depth, norm, lr in cells:
        cell = f"{norm}_{depth}L" + (f"_lr{lr:g}" if args.lrs else "") + (
            f"_{args.tag}" if args.tag else "")
        out_dir = os.path.join(args.out, cell)
        done = os.path.join(out_dir, "result.json")
        if os.path.exists(done):
            print(f"[depth_study] {cell}: done before, skipped", file=sys.stderr)
            continue
        command = [args.binary, "train", "--spec", args.spec,
                   "--set", f"encoder_layers={depth}", "--set", f"decoder_layers={depth}",
                   "--set", f"output_dir={out_dir}", "--set", "layer_stats_interval=1",
                   "--set", f"early_update_steps={EARLY_UPDATE_STEPS}"]
        for override in overrides_for(norm) + args.set:
            command += ["--set", override]
        if steps is not None:
            command += ["--steps", str(steps)]
        if lr is not None:
            command += ["--set", f"lr={lr}"]
        if args.grid == "smoke":
            command += ["--set", "checkpoint_interval=2", "--set", "eval_interval=0"]
        print(f"[depth_study] {cell}: {' '.join(command)}", file=sys.stderr)
        os.makedirs(out_dir, exist_ok=True)
        start_step = resumed_step(out_dir)
        start = time.time()
        with open(os.path.join(out_dir, "train.log"), "a") as log:
            exit_code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT)
        wall_s = time.time() - start
        result = summarise(cell, norm, depth, lr, exit_code, wall_s, out_dir, start_step)
        line = json.dumps(result)
        print(line)
        sys.stdout.flush()
        with open(os.path.join(args.out, "summary.jsonl"), "a") as summary:
            summary.write(line + "\n")
        # Only an ended cell is done: a failure other than divergence
        # (a crash, a kill) is retried by the next invocation.
        if exit_code in (0, 3):
            with open(done, "w") as f:
                f.write(line + "\n")
        else:
            print(f"[depth_study] {cell}: pipetrain exited {exit_code}; see "
                  f"{out_dir}/train.log (rerun to retry)", file=sys.stderr)


if __name__ == "__main__":
    main()
