HELP = """Write a synthetic dataset in the EgoPressure on-disk layout.

Procedural 778-vertex hands (left and right) perform the real gesture families
(palm / finger / one-by-one / index presses, index drags, pinches and no-contact
hovers a few mm above the pad) under soft-tissue contact physics that stay
internal: the stored annotation is what an annotator's fit would hold (contact
patches resting on the pad, their flattening in `displacement`, a ~1 mm residual
uncorrelated with force), plus an estimated-mesh track (`vertices_estimated`,
`joint_position_estimated`: a monocular estimator's mesh). An egocentric camera
renders RGB, depth (separate depth sensor + k4a calibration) and the hand mask;
pressure shows only as the real world shows it (nail blanching, contact shadows,
the flattened pad), often hidden from the ego view. Realistic imperfections (depth
noise and holes, motion blur, lighting and skin-tone variation, camera tilts, the
annotation residual) are on unless --no-imperfections.
Output: OUT/configs/... and OUT/data/<participant>/<sequence>/*.parquet, exactly
as the real dataset; read it with the same reader (`egopressdiff info OUT`).

Every family appears once the dataset has 7 or more sequences in total; the same
--seed gives byte-identical files. OUT must not exist or be empty unless
--overwrite; the dataset appears under OUT only when it is complete."""



def _max_sequences() -> int:
    from egopressdiff.data import layout

    return 2 * sum(len(g) for g in layout.GESTURE_FAMILIES.values())  # each gesture, left and right


def add_arguments(p):
    p.add_argument("out", metavar="OUT", help="output dataset root")
    p.add_argument("--participants", type=int, default=3, help="number of participants p_001... (default 3)")
    p.add_argument("--sequences", type=int, default=6,
                   help="sequences per participant (default 6; at most 50: every gesture, left and right)")
    p.add_argument("--frames", type=int, default=48, help="frames per sequence (default 48)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--image-size", default="320x240", metavar="WxH",
                   help="colour image size (default 320x240; the depth image is square, ~0.8 x the width)")
    p.add_argument("--no-imperfections", action="store_true",
                   help="clean data: no depth noise/holes, blur, lighting/skin variation, camera tilts or "
                        "annotation residual")
    p.add_argument("--annotation-residual", type=float, default=None, metavar="S",
                   help="scale of the annotator's fit residual (default 1: about 1.3 mm RMS, 0.9 mm in height; "
                        "0: an exact fit, the contact patches exactly on the pad). With --no-imperfections the "
                        "default is 0")
    p.add_argument("--workers", type=int, default=1, help="processes generating sequences in parallel (default 1)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing non-empty OUT")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _parse_size(text: str) -> tuple[int, int]:
    from egopressdiff.errors import EgoPressDiffError

    try:
        w, h = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise EgoPressDiffError(f"--image-size must look like 320x240, got {text!r}") from None
    if not (32 <= w <= 4096 and 32 <= h <= 4096):
        raise EgoPressDiffError(f"--image-size must be between 32x32 and 4096x4096, got {w}x{h}")
    return w, h


def run(args) -> int:
    from pathlib import Path

    from egopressdiff.errors import EgoPressDiffError

    if args.participants < 1 or args.participants > 999:
        raise EgoPressDiffError(f"--participants must be between 1 and 999, got {args.participants}")
    if not 1 <= args.sequences <= _max_sequences():
        raise EgoPressDiffError(f"--sequences must be between 1 and {_max_sequences()}, got {args.sequences}")
    if args.frames < 1 or args.frames > 100_000:
        raise EgoPressDiffError(f"--frames must be between 1 and 100000, got {args.frames}")
    if args.workers < 1:
        raise EgoPressDiffError(f"--workers must be >= 1, got {args.workers}")
    if args.seed < 0:
        raise EgoPressDiffError(f"--seed must be >= 0, got {args.seed}")
    res = args.annotation_residual
    if res is not None and not 0 <= res <= 10:
        raise EgoPressDiffError(f"--annotation-residual must be between 0 and 10, got {res}")
    size = _parse_size(args.image_size)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise EgoPressDiffError(f"OUT {out} is a file, not a directory")
    non_empty = out.is_dir() and any(out.iterdir())
    if non_empty and not args.overwrite:
        raise EgoPressDiffError(f"OUT {out} exists and is not empty (use --overwrite to replace it)")

    import dataclasses

    from egopressdiff.data.synth import Imperfections, generate_dataset
    from egopressdiff.fsutil import atomic_dir

    imp = Imperfections.none() if args.no_imperfections else Imperfections()
    if res is not None:
        imp = dataclasses.replace(imp, annotation_residual=float(res))
    # build in a temporary sibling directory, renamed to OUT only when complete
    with atomic_dir(out, overwrite=True) as tmp:
        summary = generate_dataset(tmp, participants=args.participants, sequences=args.sequences,
                                   frames=args.frames, seed=args.seed, image_size=size, imperfections=imp,
                                   progress=not args.no_progress, workers=args.workers)
    fams = ", ".join(f"{k} {v}" for k, v in sorted(summary["families"].items()))
    print(f"wrote {len(summary['sequences'])} sequences of {args.participants} participant(s) to {out}: "
          f"{summary['frames']} frames, {summary['annotated_frames']} annotated, "
          f"{summary['contact_frames']} in contact; {summary['seconds']:.1f} s "
          f"({summary['frames_per_second']:.1f} frames/s)")
    print(f"families: {fams}")
    return 0
