HELP = """Measure performance: training step, sampling speed, FLOP utilisation, time breakdown,
batched / compiled prediction, conditioning cost, data pipeline, memory.

  egopressdiff bench --config tiny [--device cpu|cuda] [--json OUT] [--quick]
                     [--peak-tflops TF] [--no-compile]

Prints a table and (with --json) writes the figures as JSON: machine, config, train
{seconds_per_step, clips_per_second, peak_memory_mb}, sample {"4","8","25"}
{seconds_per_window, frames_per_second, peak_memory_mb}; flops (counted by torch's
FlopCounterMode on meta tensors: unet_forward per 16-frame step, window_without_unet, train /
train_cached forward+backward); mfu {sample {k: flops_per_window, tflops_per_second, mfu},
sample_unet_only, train, train_cached} with mfu = achieved / peak_tflops (built-in bf16 dense
peaks for H100/H200/A100, else --peak-tflops; null on CPU, reason under "skipped");
window_breakdown (seconds and share of one sampled window: unet, codec_encode, codec_decode,
clip, other_encoders = Vertex Encoder + PoseNet + UV encoder, data = the input processor on
in-memory frames, host_overhead = the rest; calls per stage); predict_batched (a 100-frame
in-memory recording, windows of the clip length with overlap 4, the model's default steps:
frames/s at batch sizes 1, 2, 4, 8 and compiled, speed-ups against batch size 1 eager) and
predict_speedup; train_profile (forward per stage, backward, optimizer; top operators);
optimizer_step_seconds (AdamW for-loop / foreach / fused); conditioning_overhead_ratio,
posenet_share, vertex_encoder_share, data_pipeline_ratio, clip_length_seconds {"8","16","32"},
predict_memory_ratio_1024_vs_64, cached_speedup, targets, skipped. Each time is the median of
several repetitions after a warm-up. The model has random weights (svd too: nothing is
downloaded). On CPU the svd config measures only what fits in a few minutes (4-step sampling
and the conditioning overhead) and lists the rest under "skipped". On GPU: bf16 autocast and
gradient checkpointing as the config says, SDPA attention; compile uses CUDA graphs
("reduce-overhead"). Definitions: egopressdiff/bench.py.
--quick: one repetition, the smallest data, no compile (for tests; figures are noisy)."""


def add_arguments(p) -> None:
    p.add_argument("--config", default="tiny", choices=["tiny", "svd"], help="model/run preset (default tiny)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where to run (default cpu)")
    p.add_argument("--json", metavar="OUT", help="write the figures to this JSON file")
    p.add_argument("--quick", action="store_true", help="one repetition, smallest data (noisy; for tests)")
    p.add_argument("--repeats", type=int, default=None, help="repetitions per figure (default 5, 1 with --quick)")
    p.add_argument("--peak-tflops", type=float, default=None, metavar="TF",
                   help="the device's peak TFLOP/s for MFU (default: bf16 dense 989 for H100/H200, 312 for "
                        "A100; none on CPU)")
    p.add_argument("--no-compile", action="store_true",
                   help="skip the torch.compile measurement (its first call compiles for minutes on CPU)")


def run(args) -> int:
    import json
    import sys

    from egopressdiff.errors import EgoPressDiffError

    if args.repeats is not None and args.repeats < 1:
        raise EgoPressDiffError("--repeats must be >= 1")
    if args.peak_tflops is not None and not args.peak_tflops > 0:
        raise EgoPressDiffError("--peak-tflops must be > 0")
    from egopressdiff.bench import format_table, run_bench
    from egopressdiff.fsutil import atomic_write_text

    res = run_bench(args.config, args.device, quick=args.quick, repeats=args.repeats,
                    peak_tflops=args.peak_tflops, compile=False if args.no_compile else None,
                    log=lambda msg: print(f"egopressdiff bench: {msg}", file=sys.stderr, flush=True))
    print(format_table(res))
    if args.json:
        atomic_write_text(args.json, json.dumps(res, indent=2))
        print(f"wrote {args.json}")
    return 0
