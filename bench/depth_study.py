#!/usr/bin/env python3
"""The depth study's grid, one command (issue 14 section 2).

    python3 bench/depth_study.py [--grid full|smoke] [--out runs/depth_study]
                                 [--steps N] [--lr X] [--binary PATH]

Trains configs/depth_study.pbtxt once per (norm, depth) cell with the same
learning rate, warm-up, token budget and seed, each in OUT/<cell>/ (its own
checkpoints, metrics.jsonl and TensorBoard events). Resumable: a finished
cell (OUT/<cell>/result.json) is skipped, an interrupted one resumes from its
latest checkpoint (pipetrain does that by itself). After each cell it prints
one JSON line with the cell's cost and outcome and appends it to
OUT/summary.jsonl:

    {"cell":"POST_LN_18L","norm":"POST_LN","depth":18,"exit":0,"diverged":false,
     "steps":300,"wall_s":812.4,"s_per_step":2.7,"first_loss":..,"final_loss":..,
     "min_loss":..,"skipped_steps":0,"grad_norm_at_init":[...per layer...]}

A cell has diverged when pipetrain stopped it (exit 3: max_skipped_steps
non-finite steps in a row) or its loss blew up (the last logged loss above
twice the lowest one). Long runs are not part of CI.
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
    "smoke": (["POST_LN", "DEEPNORM"], [2]),
}


def overrides_for(norm):
    for name, extra in NORMS:
        if name == norm:
            return extra if extra else [f"norm={norm}"]
    raise SystemExit(f"depth_study: unknown norm {norm}")


def read_metrics(path):
    steps, layer_stats = [], []
    if not os.path.exists(path):
        return steps, layer_stats
    with open(path) as f:
        for line in f:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a kill
            if "layer_stats" in record:
                layer_stats.append(record)
            elif "grad_norm" in record:
                steps.append(record)
    # A resumed cell logs the steps after its checkpoint again: keep the last.
    by_step = {r["step"]: r for r in steps}
    return [by_step[s] for s in sorted(by_step)], layer_stats


def resumed_step(out_dir):
    """The step the cell's latest checkpoint holds (0 for a fresh cell)."""
    try:
        with open(os.path.join(out_dir, "latest")) as f:
            return int(f.read().strip().rsplit("_", 1)[-1])
    except (OSError, ValueError):
        return 0


def summarise(cell, norm, depth, exit_code, wall_s, out_dir, start_step):
    steps, layer_stats = read_metrics(os.path.join(out_dir, "metrics.jsonl"))
    losses = [r["loss"] for r in steps if r.get("loss") is not None]
    blown_up = bool(losses) and losses[-1] > 2 * min(losses)
    first_stats = min(layer_stats, key=lambda r: r["step"]) if layer_stats else None
    return {
        "cell": cell, "norm": norm, "depth": depth, "exit": exit_code,
        "diverged": exit_code == 3 or blown_up,
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
    parser.add_argument("--lr", type=float, default=None)
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
    for depth in depths:
        for norm in norms:
            cell = f"{norm}_{depth}L"
            out_dir = os.path.join(args.out, cell)
            done = os.path.join(out_dir, "result.json")
            if os.path.exists(done):
                print(f"[depth_study] {cell}: done before, skipped", file=sys.stderr)
                continue
            command = [args.binary, "train", "--spec", args.spec,
                       "--set", f"encoder_layers={depth}", "--set", f"decoder_layers={depth}",
                       "--set", f"output_dir={out_dir}", "--set", "layer_stats_interval=1"]
            for override in overrides_for(norm):
                command += ["--set", override]
            if steps is not None:
                command += ["--steps", str(steps)]
            if args.lr is not None:
                command += ["--set", f"lr={args.lr}"]
            if args.grid == "smoke":
                command += ["--set", "checkpoint_interval=2"]
            print(f"[depth_study] {cell}: {' '.join(command)}", file=sys.stderr)
            os.makedirs(out_dir, exist_ok=True)
            start_step = resumed_step(out_dir)
            start = time.time()
            with open(os.path.join(out_dir, "train.log"), "a") as log:
                exit_code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT)
            wall_s = time.time() - start
            result = summarise(cell, norm, depth, exit_code, wall_s, out_dir, start_step)
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
