#!/usr/bin/env python3
"""Checks a file from `pipetrain ckpt export` with the reference `safetensors` package.

tests/ckpt_command_test.cc runs it on an export of a model whose values it
knows, so the C++ writer is judged by the library everyone else loads these
files with, not by pipetrain's own reader:

  check_safetensors.py FILE --count N [--shape NAME=AxB]... [--metadata KEY=VALUE]...
                       [--fnv1a64 HEX]

--fnv1a64 is FNV-1a (64-bit) over, for each tensor in sorted name order, the
name's UTF-8 bytes followed by the tensor's float32 little-endian bytes: it
pins every name and every value at once. Exit 0 when every check passes,
1 naming each failure, 2 when the package is missing.
"""
import argparse
import sys

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
MASK = 0xFFFFFFFFFFFFFFFF


def fnv1a64(data, state):
    for byte in data:
        state = ((state ^ byte) * FNV_PRIME) & MASK
    return state


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file")
    parser.add_argument("--count", type=int, required=True, help="number of tensors")
    parser.add_argument("--shape", action="append", default=[], help="NAME=AxB (scalar: NAME=)")
    parser.add_argument("--metadata", action="append", default=[], help="KEY=VALUE")
    parser.add_argument("--fnv1a64", help="16 hex digits")
    args = parser.parse_args()
    try:
        import numpy as np
        from safetensors import safe_open
        from safetensors.numpy import load_file
    except ImportError as error:
        print(f"cannot import safetensors/numpy ({error}); pip install safetensors numpy")
        return 2

    problems = []
    tensors = load_file(args.file)  # raises on a malformed header or offsets
    with safe_open(args.file, framework="np") as handle:
        metadata = handle.metadata() or {}
    if len(tensors) != args.count:
        problems.append(f"{len(tensors)} tensors, expected {args.count}")
    for spec in args.shape:
        name, _, dims = spec.partition("=")
        want = tuple(int(d) for d in dims.split("x") if d)
        if name not in tensors:
            problems.append(f"no tensor {name}")
        elif tuple(tensors[name].shape) != want:
            problems.append(f"{name}: shape {tuple(tensors[name].shape)}, expected {want}")
    for name, array in tensors.items():
        if array.dtype != np.float32:
            problems.append(f"{name}: dtype {array.dtype}, expected float32")
    for item in args.metadata:
        key, _, value = item.partition("=")
        if metadata.get(key) != value:
            problems.append(f"metadata {key}={metadata.get(key)!r}, expected {value!r}")
    if args.fnv1a64:
        state = FNV_OFFSET
        for name in sorted(tensors):
            state = fnv1a64(name.encode("utf-8"), state)
            state = fnv1a64(tensors[name].astype("<f4").tobytes(), state)
        if f"{state:016x}" != args.fnv1a64.lower():
            problems.append(f"fnv1a64 {state:016x}, expected {args.fnv1a64.lower()}")
    for problem in problems:
        print(f"{args.file}: {problem}")
    if problems:
        return 1
    total = sum(array.size for array in tensors.values())
    print(f"ok: {args.file}: {len(tensors)} tensors, {total} values, metadata keys "
          f"{sorted(metadata)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
