HELP = """Predict UV-pressure maps (kPa) for whole sequences.

Writes PRED/<participant>/<sequence>.npz with `frame` and `pressure_kpa` (T x 224 x 224,
float32), and `pressure_std_kpa` (the spread of the samples: the model's uncertainty)
when --samples > 1. Sequences of any length are predicted in overlapping windows that
are blended in the overlap; memory does not grow with length. Sequences already
predicted are skipped unless --overwrite.

CHECKPOINT is a training run folder, a save_pretrained folder, or the name of a shipped
model (see `egopressdiff models`)."""


def add_arguments(p):
    p.add_argument("--checkpoint", required=True, help="run folder, model folder or shipped model name")
    p.add_argument("--data", required=True, help="dataset root (EgoPressure layout)")
    p.add_argument("--output", required=True, help="prediction folder")
    p.add_argument("--split", default="test", choices=["train", "val", "test", "all"],
                   help="participant split to predict (default: test)")
    p.add_argument("--participants", nargs="+", help="predict these participants instead of a split")
    p.add_argument("--sequences", nargs="+", help="only these sequence names")
    p.add_argument("--steps", type=int, default=None, help="sampling steps (default: the model's)")
    p.add_argument("--samples", type=int, default=1, help="samples averaged per frame (default 1)")
    p.add_argument("--floor", type=float, default=None, metavar="KPA",
                   help="EgoPressDiff only: zero predicted pressure below KPA (default: the model's "
                        "output_floor_kpa; 0 keeps the raw samples)")
    p.add_argument("--window", type=int, default=None, help="frames per window (default: model clip length)")
    p.add_argument("--overlap", type=int, default=None,
                   help="frames shared by neighbouring windows (default: min(4, window // 4))")
    p.add_argument("--batch-size", type=int, default=None,
                   help="windows sampled together in one model call (default: %(default)s -> the pipeline's "
                        "default); faster, memory grows with it; results equal up to float rounding")
    p.add_argument("--mesh", default="annotated", metavar="annotated|estimated|DIR",
                   help="hand mesh fed to the model: the annotation (default, the paper's protocol), the "
                        "estimated-mesh track (vertices_estimated: what a monocular estimator gives; synthetic "
                        "data only), or DIR: your own meshes, DIR/<participant>/<sequence>.npz with frame, "
                        "vertices (F x 778 x 3, m) and joint_position (F x 21 x 3), world or camera frame "
                        "(see the README, 'Your own hand meshes')")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                   help="bf16: autocast (matmuls, convolutions, attention in bfloat16); auto (default): bf16 on "
                        "CUDA, fp32 on CPU")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the U-Net (CUDA graphs on GPU); the first window compiles, which takes "
                        "minutes on CPU: worth it for long runs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="cpu, cuda, or auto")
    p.add_argument("--overwrite", action="store_true", help="redo sequences that already have a prediction")
    p.add_argument("--no-progress", action="store_true")


def run(args) -> int:
    from egopressdiff.errors import EgoPressDiffError

    if args.samples < 1:
        raise EgoPressDiffError("--samples must be >= 1")
    if args.steps is not None and args.steps < 1:
        raise EgoPressDiffError("--steps must be >= 1")
    if args.batch_size is not None and args.batch_size < 1:
        raise EgoPressDiffError("--batch-size must be >= 1")
    if args.floor is not None and not args.floor >= 0:
        raise EgoPressDiffError("--floor must be >= 0 kPa")
    if args.mesh not in ("annotated", "estimated"):
        from pathlib import Path

        if not Path(args.mesh).is_dir():
            raise EgoPressDiffError(f"--mesh {args.mesh}: not 'annotated', 'estimated' or a folder of mesh files")
    from egopressdiff.data.reader import EgoPressureReader
    from egopressdiff.inference import PredictOptions, predict_dataset, select_sequences
    from egopressdiff.pipelines.base import pipeline_for
    from egopressdiff.runtime import configure_cpu_threads
    from egopressdiff.shipped import resolve_checkpoint
    from egopressdiff.training.registry import load_model

    configure_cpu_threads()  # physical cores unless EGOPRESSDIFF_NUM_THREADS / OMP_NUM_THREADS say otherwise
    path = resolve_checkpoint(args.checkpoint)
    model = load_model(path)
    if args.floor is not None:
        if not hasattr(getattr(model, "config", None), "output_floor_kpa"):
            raise EgoPressDiffError(f"--floor applies to EgoPressDiff models only; {args.checkpoint} is not one")
        model.config.output_floor_kpa = float(args.floor)
    device = _device(args.device)
    model.to(device)
    pipe = pipeline_for(model).set_precision(args.precision)
    if args.compile:
        pipe.compile()
    reader = EgoPressureReader(args.data)
    pairs = select_sequences(reader, split=args.split, participants=args.participants, sequences=args.sequences)
    opts = PredictOptions(steps=args.steps, samples=args.samples, window=args.window, overlap=args.overlap,
                          seed=args.seed, mesh=args.mesh, overwrite=args.overwrite, progress=not args.no_progress,
                          **({} if args.batch_size is None else {"batch_size": args.batch_size}))
    with pipe.autocast():  # also for pipelines whose sample() does not enter it itself
        rep = predict_dataset(pipe, args.data, args.output, pairs=pairs, options=opts)
    print(f"predicted {len(rep.written)} sequences ({rep.frames} frames) in {rep.seconds:.1f} s"
          + (f"; skipped {len(rep.skipped)} already complete (use --overwrite to redo)" if rep.skipped else "")
          + f" -> {args.output}")
    return 0


def _device(name):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
