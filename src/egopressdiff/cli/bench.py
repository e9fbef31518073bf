HELP = """Measure performance: training step, sampling speed, conditioning cost, data pipeline, memory.

  egopressdiff bench --config tiny [--device cpu|cuda] [--json OUT] [--quick]

Prints a table and (with --json) writes the figures as JSON: machine, config, train
{seconds_per_step, clips_per_second, peak_memory_mb}, sample {"4","8","25"}
{seconds_per_window, frames_per_second, peak_memory_mb}, conditioning_overhead_ratio,
posenet_share, vertex_encoder_share, data_pipeline_ratio, clip_length_seconds {"8","16","32"},
predict_memory_ratio_1024_vs_64, cached_speedup, targets, skipped. Each time is the median of
several repetitions after a warm-up. The model has random weights (svd too: nothing is
downloaded). On CPU the svd config measures only what fits in a few minutes (4-step sampling
and the conditioning overhead) and lists the rest under "skipped". On GPU: bf16 autocast and
gradient checkpointing as the config says, SDPA attention. Definitions: egopressdiff/bench.py.
--quick: one repetition and the smallest data (for tests; figures are noisy)."""


def add_arguments(p) -> None:
    p.add_argument("--config", default="tiny", choices=["tiny", "svd"], help="model/run preset (default tiny)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where to run (default cpu)")
    p.add_argument("--json", metavar="OUT", help="write the figures to this JSON file")
    p.add_argument("--quick", action="store_true", help="one repetition, smallest data (noisy; for tests)")
    p.add_argument("--repeats", type=int, default=None, help="repetitions per figure (default 5, 1 with --quick)")


def run(args) -> int:
    import json
    import sys

    from egopressdiff.errors import EgoPressDiffError

    if args.repeats is not None and args.repeats < 1:
        raise EgoPressDiffError("--repeats must be >= 1")
    from egopressdiff.bench import format_table, run_bench
    from egopressdiff.fsutil import atomic_write_text

    res = run_bench(args.config, args.device, quick=args.quick, repeats=args.repeats,
                    log=lambda msg: print(f"egopressdiff bench: {msg}", file=sys.stderr, flush=True))
    print(format_table(res))
    if args.json:
        atomic_write_text(args.json, json.dumps(res, indent=2))
        print(f"wrote {args.json}")
    return 0
