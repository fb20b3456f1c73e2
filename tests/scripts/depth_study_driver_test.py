#!/usr/bin/env python3
"""bench/depth_study.py end to end on the synthetic tiny spec (seconds): two
cells, each with an exit status, per-layer gradient norms at step 1 and the
early-update measure starting at exactly 0; a second invocation skips the
finished cells; the plot script draws the three figures and a table row per
cell.

    depth_study_driver_test.py REPO_ROOT PIPETRAIN_BINARY WORK_DIR
"""
import json
import os
import shutil
import subprocess
import sys


def check(condition, message):
    if not condition:
        print("FAIL:", message)
        sys.exit(1)


def main():
    root, binary, work = sys.argv[1:4]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    out = os.path.join(work, "study")
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="passive")
    command = [sys.executable, os.path.join(root, "bench/depth_study.py"), "--grid", "smoke",
               "--spec", os.path.join(root, "configs/tiny.pbtxt"), "--out", out,
               "--binary", binary]
    first = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True,
                           timeout=300)
    check(first.returncode == 0, f"driver failed:\n{first.stdout}\n{first.stderr}")
    lines = [json.loads(l) for l in first.stdout.splitlines() if l.startswith("{")]
    check([r["cell"] for r in lines] == ["POST_LN_2L", "DEEPNORM_2L"], f"cells: {lines}")
    for r in lines:
        check(r["exit"] == 0 and not r["diverged"], f"{r['cell']} did not run cleanly: {r}")
        check(r["steps"] == 4, f"{r['cell']} ran {r['steps']} steps")
        check(r["layers"][0] == "embed" and len(r["grad_norm_at_init"]) == len(r["layers"]),
              f"{r['cell']} per-layer gradient norms: {r}")
        early = dict((s, v) for s, v in r["early_update"])
        check(early.get(0) == 0 and all(early.get(s, 0) > 0 for s in range(1, 5)),
              f"{r['cell']} early update: {r['early_update']}")
    # DeepNorm scales its branches down at initialisation: a smaller first update.
    check(lines[1]["early_update"][1][1] < lines[0]["early_update"][1][1],
          "DeepNorm's first update is not smaller than Post-LN's")
    again = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True,
                           timeout=300)
    check(again.returncode == 0 and "done before, skipped" in again.stderr
          and not again.stdout.strip(), f"second invocation reran cells:\n{again.stderr}")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("matplotlib missing: the plot script is not checked")
        return
    plot = subprocess.run([sys.executable, os.path.join(root, "docs/scripts/plot_depth_study.py"),
                           out, os.path.join(work, "fig")], capture_output=True, text=True,
                          timeout=300)
    check(plot.returncode == 0, f"plot script failed:\n{plot.stderr}")
    for suffix in ("loss", "early_update", "grad_init"):
        path = os.path.join(work, f"fig_{suffix}.png")
        check(os.path.getsize(path) > 1000, f"{path} missing or empty")
    rows = [l for l in plot.stdout.splitlines() if l.startswith("| POST_LN") or
            l.startswith("| DEEPNORM")]
    check(len(rows) == 2, f"table rows: {plot.stdout}")
    # The 1,000-layer figure's script, on the two smoke cells' runs.
    figure = os.path.join(work, "layers.png")
    layers = subprocess.run([sys.executable,
                             os.path.join(root, "docs/scripts/plot_thousand_layers.py"), figure,
                             os.path.join(out, "POST_LN_2L"), os.path.join(out, "DEEPNORM_2L"),
                             "--steps", "1,4"], capture_output=True, text=True, timeout=300)
    check(layers.returncode == 0 and "(4 gradient profiles)" in layers.stdout,
          f"plot_thousand_layers failed:\n{layers.stdout}\n{layers.stderr}")
    check(os.path.getsize(figure) > 1000, f"{figure} missing or empty")
    print("ok")


if __name__ == "__main__":
    main()
