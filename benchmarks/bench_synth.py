"""Benchmark: frames per second of the synthetic generator on one CPU core.

    python benchmarks/bench_synth.py [--participants 1] [--sequences 7] [--frames 48] [--repeat 2]

Runs :func:`egopressdiff.data.synth.generate_dataset` at the default image size
(320x240 colour, 256x256 depth) into a temporary directory, pinned to one core
(``os.sched_setaffinity``, BLAS/OpenMP threads = 1), and prints frames/s for the
whole pipeline: gesture + contact solve, physics and baking, colour/depth/mask
renders with imperfections, JPEG/PNG encoding and the Parquet writes. The best
of ``--repeat`` runs is reported (the first run also pays one-off costs: imports,
UV rasterisation, per-side caches), in wall-clock frames/s and in frames per CPU
second of this process (the two agree on an idle core; on a shared machine the
second is the generator's own speed). A figure, never an assertion.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--participants", type=int, default=1)
    ap.add_argument("--sequences", type=int, default=7, help="7 = one sequence of every gesture family")
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--no-imperfections", action="store_true")
    ap.add_argument("--all-cores", action="store_true", help="do not pin to one core")
    args = ap.parse_args(argv)
    if not args.all_cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    from egopressdiff.data.synth import DEFAULT_IMAGE_SIZE, Imperfections, generate_dataset

    imp = Imperfections.none() if args.no_imperfections else Imperfections()
    runs, cpu_runs = [], []
    for _ in range(max(1, args.repeat)):
        with tempfile.TemporaryDirectory() as tmp:
            t, c = time.perf_counter(), time.process_time()
            s = generate_dataset(tmp, args.participants, args.sequences, args.frames, seed=0,
                                 image_size=DEFAULT_IMAGE_SIZE, imperfections=imp, progress=False)
            runs.append(s["frames"] / (time.perf_counter() - t))
            cpu_runs.append(s["frames"] / max(time.process_time() - c, 1e-9))
    result = {
        "benchmark": "synth",
        "frames_per_run": args.participants * args.sequences * args.frames,
        "image_size": list(DEFAULT_IMAGE_SIZE),
        "imperfections": not args.no_imperfections,
        "cores": "all" if args.all_cores else 1,
        "frames_per_second": round(max(runs), 2),
        "runs_frames_per_second": [round(r, 2) for r in runs],
        # frames per second of this process's CPU time: the figure when the core is not shared
        "frames_per_cpu_second": round(max(cpu_runs), 2),
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "machine": f"{platform.machine()} {platform.processor() or ''} python {platform.python_version()}".strip(),
    }
    print(json.dumps(result))
    print(f"synth: {result['frames_per_second']:.1f} frames/s wall, {result['frames_per_cpu_second']:.1f} frames "
          f"per CPU-second on {result['cores']} core(s) ({result['frames_per_run']} frames per run at "
          f"{DEFAULT_IMAGE_SIZE[0]}x{DEFAULT_IMAGE_SIZE[1]})")
    return result


if __name__ == "__main__":
    main()
