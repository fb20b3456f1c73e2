#!/usr/bin/env python3
"""Reads TensorBoard event files with TensorBoard's own loader.

tests/event_file_writer_test.cc runs it on files from core/io/event_file_writer
so the C++ writer is judged by the code `tensorboard --logdir` uses, not by
pipetrain's reading of its own bytes:

  read_event_file.py PATH            one line per point: "scalar TAG STEP VALUE"
  read_event_file.py PATH --counts   one line per tag: points, first/last step, last value

PATH is a run directory (every events.out.tfevents.* file in it) or one file.
VALUE is printed with repr(), so the 32-bit float TensorBoard stored comes
back exactly. Every point is kept (no reservoir sampling). Exit 0 on
success, 1 when PATH is missing or holds no scalars, 2 when tensorboard is not importable.
"""
import argparse
import os
import sys


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--counts", action="store_true", help="a summary per tag")
    args = parser.parse_args()
    try:
        from tensorboard.backend.event_processing import event_accumulator
    except ImportError as error:
        print(f"tensorboard is not importable ({error}); pip install tensorboard", file=sys.stderr)
        return 2

    if not os.path.exists(args.path):
        print(f"{args.path} does not exist", file=sys.stderr)
        return 1
    # 0 = keep every point; the default keeps a sample of 1,000 per tag.
    accumulator = event_accumulator.EventAccumulator(
        args.path, size_guidance={event_accumulator.SCALARS: 0})
    accumulator.Reload()
    tags = sorted(accumulator.Tags()[event_accumulator.SCALARS])
    if not tags:
        print(f"no scalars under {args.path}", file=sys.stderr)
        return 1
    for tag in tags:
        points = accumulator.Scalars(tag)
        if args.counts:
            print(f"{tag}: {len(points)} points, steps {points[0].step}..{points[-1].step}, "
                  f"last {points[-1].value:.6g}")
        else:
            for point in points:
                print(f"scalar {tag} {point.step} {point.value!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
