HELP = """Draw predictions: UV-map videos, pressure on the 3D hand, and an HTML report.

Per sequence: a video (MP4, or GIF where no encoder is present) of
RGB crop | predicted UV map | ground-truth UV map | |error| with a kPa colour bar,
and the pressure drawn on the 3D hand (the synthetic hand, or MANO when the
dataset is real and your MANO UV files are found) at the frame of peak force.
DIR/index.html links everything and shows the metric table. Every file is written
atomically; an existing non-empty DIR is refused unless --overwrite."""


def add_arguments(p):
    p.add_argument("--pred", required=True, help="prediction folder")
    p.add_argument("--data", required=True, help="dataset root")
    p.add_argument("--output", required=True, help="folder for pictures, videos and index.html")
    p.add_argument("--max-sequences", type=int, default=None, help="render at most this many sequences")
    p.add_argument("--max-frames", type=int, default=None, help="at most this many frames per video")
    p.add_argument("--no-metrics", action="store_true", help="do not compute the metric table for the report")
    p.add_argument("--overwrite", action="store_true", help="replace the pictures in an existing non-empty DIR")
    p.add_argument("--no-progress", action="store_true")


def run(args) -> int:
    from pathlib import Path

    from egopressdiff.errors import EgoPressDiffError

    for opt in ("max_sequences", "max_frames"):
        if getattr(args, opt) is not None and getattr(args, opt) < 1:
            raise EgoPressDiffError(f"--{opt.replace('_', '-')} must be >= 1, got {getattr(args, opt)}")
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise EgoPressDiffError(f"render output path {out} is a file, not a directory")
    if out.is_dir() and any(out.iterdir()) and not args.overwrite:
        raise EgoPressDiffError(f"render output {out} exists and is not empty (use --overwrite to replace it)")
    if not Path(args.pred).is_dir():
        raise EgoPressDiffError(f"prediction folder {args.pred} does not exist")
    from egopressdiff.evaluation.run import evaluate_folder
    from egopressdiff.evaluation.visualize import render_folder

    metrics = None if args.no_metrics else evaluate_folder(args.pred, args.data, progress=False)
    index = render_folder(args.pred, args.data, args.output, max_sequences=args.max_sequences,
                          max_frames=args.max_frames, metrics=metrics, progress=not args.no_progress)
    print(f"report: {index.resolve()}")
    return 0
