"""ClipDataset throughput (clips/s), with and without UV conditioning.

    .venv/bin/python benchmarks/bench_clips.py                 # generates a small synthetic dataset first
    .venv/bin/python benchmarks/bench_clips.py --root DATA     # an existing dataset (real or synthetic)

Measures single-process ``dataset[i]`` over shuffled clip indices (cold row-group
cache per reader, as a shuffled DataLoader worker sees it) after one warm-up
item, at the default settings (16 frames, crop 64, UV 224) unless overridden.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np


def measure(root, n: int, uv_conditioning: bool, **kw) -> dict:
    from egopressdiff.data.clips import ClipDataset

    ds = ClipDataset(root, uv_conditioning=uv_conditioning, skip_short=True, **kw)
    order = np.random.default_rng(0).permutation(len(ds))
    ds[int(order[0])]  # warm-up: atlas rasterisation, calibration parsing
    idx = [int(i) for i in order[1: n + 1]] or [int(order[0])]
    t0 = time.perf_counter()
    for i in idx:
        ds[i]
    dt = time.perf_counter() - t0
    return {"uv_conditioning": uv_conditioning, "clips": len(idx), "seconds": round(dt, 3),
            "clips_per_s": round(len(idx) / dt, 2), "frames_per_s": round(len(idx) * ds.clip_length / dt, 1),
            "dataset_clips": len(ds)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", help="existing dataset root (default: generate one with the synthetic generator)")
    ap.add_argument("--clips", type=int, default=20, help="clips timed per setting")
    ap.add_argument("--clip-length", type=int, default=16)
    ap.add_argument("--crop-size", type=int, default=64)
    ap.add_argument("--uv-cond-size", type=int, default=64)
    args = ap.parse_args()
    tmp = None
    root = args.root
    if root is None:
        from egopressdiff.data.synth import generate_dataset

        tmp = tempfile.TemporaryDirectory(prefix="bench_clips_")
        root = tmp.name
        t0 = time.perf_counter()
        generate_dataset(root, participants=1, sequences=2, frames=64, seed=0, progress=False)
        print(f"generated synthetic data in {time.perf_counter() - t0:.1f} s", flush=True)
    kw = dict(clip_length=args.clip_length, stride=args.clip_length // 2, crop_size=args.crop_size,
              uv_cond_size=args.uv_cond_size)
    results = [measure(root, args.clips, False, **kw), measure(root, args.clips, True, **kw)]
    for r in results:
        print(f"uv_conditioning={r['uv_conditioning']!s:5}  {r['clips_per_s']:7.2f} clips/s  "
              f"({r['frames_per_s']} frames/s, {r['clips']} clips in {r['seconds']} s)")
    print(json.dumps(results))
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
