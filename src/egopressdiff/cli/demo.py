HELP = """Run the whole pipeline on built-in synthetic data with the shipped models.

Generates a small fresh synthetic test set (a seed never used in training),
predicts it with every shipped model (EgoPressDiff, the per-frame classification,
regression and PressureFormer-style baselines) given the annotated hand mesh, and
with EgoPressDiff given the estimated mesh (what a monocular hand-mesh estimator
gives), evaluates them, renders pictures and videos, and writes OUTPUT/index.html
with the comparison table. No download, no GPU needed."""


def add_arguments(p):
    p.add_argument("--output", default="demo-output", help="output folder (default: ./demo-output)")
    p.add_argument("--sequences", type=int, default=3, help="synthetic sequences (default 3)")
    p.add_argument("--frames", type=int, default=16,
                   help="frames per sequence (default 16: one EgoPressDiff window; more for longer videos)")
    p.add_argument("--steps", type=int, default=3,
                   help="sampling steps for EgoPressDiff (default 3, for speed: the shipped model's own default is "
                        "6; the report says which were used)")
    p.add_argument("--samples", type=int, default=1, help="samples averaged per frame (default 1)")
    p.add_argument("--overwrite", action="store_true", help="reuse/replace a non-empty output folder")
    p.add_argument("--no-progress", action="store_true")


def run(args) -> int:
    from egopressdiff.demo import run_demo
    from egopressdiff.errors import EgoPressDiffError

    if args.sequences < 1 or args.frames < 1 or args.steps < 1:
        raise EgoPressDiffError("--sequences, --frames and --steps must be >= 1")
    run_demo(args.output, sequences=args.sequences, frames=args.frames, steps=args.steps, samples=args.samples,
             overwrite=args.overwrite, progress=not args.no_progress)
    return 0
