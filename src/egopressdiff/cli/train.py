"""Train EgoPressDiff or a baseline from a config (single process, torchrun or accelerate launch).

  egopressdiff train --config tiny --data DATA --output RUN [--max-steps N] [--set train.lr=3e-4 ...]
  egopressdiff train --output RUN --resume              # continue from the newest complete checkpoint
  torchrun --nproc_per_node 4 -m egopressdiff train --config svd --data DATA --output RUN \\
      --pretrained-svd /path/to/stable-video-diffusion-img2vid-xt

CONFIG is a preset (tiny, tiny-uv, svd, baseline-cls[-tiny[-uv]], baseline-reg[-tiny[-uv]],
baseline-pformer[-tiny[-uv]]) or a YAML file with sections model / data / train (a YAML may start
from a preset with `base: tiny`).
Any key can be overridden with --set section.key=value. The resolved config is saved as
RUN/config.yaml; with --resume and no --config, that file is used.

RUN receives checkpoints/step-N (every train.checkpoint_every steps, the last
train.keep_checkpoints kept, written atomically), logs/ (TensorBoard), model/ (the final
model, for `egopressdiff predict --checkpoint RUN`) and train_summary.json.

Frozen-encoder cache: with --set train.cache_encoders=true (EgoPressDiff, data.augment=false)
the frozen VAE/CLIP outputs and the other clip inputs are computed once into RUN/cache (or
train.cache_dir) and reused while the data and encoders are unchanged; --build-cache builds
it and exits.

SIGINT (Ctrl-C) or SIGTERM: the current step finishes, a checkpoint is saved, and the
command exits with 130 (SIGINT) or 143 (SIGTERM); --resume continues from there. A second
Ctrl-C stops at once. After a crash or SIGKILL, --resume continues from the newest complete
checkpoint; on CPU with a fixed seed the result equals an uninterrupted run.
"""

from __future__ import annotations

from pathlib import Path

HELP = __doc__


def add_arguments(p) -> None:
    p.add_argument("--config", help="preset name or YAML file (default with --resume: RUN/config.yaml)")
    p.add_argument("--data", help="dataset root in the EgoPressure layout (data.source=egopressure, the default)")
    p.add_argument("--output", required=True, metavar="RUN", help="run folder")
    p.add_argument("--max-steps", type=int, help="optimizer steps to train to (overrides train.max_steps)")
    p.add_argument("--resume", action="store_true", help="continue from the newest complete checkpoint in RUN")
    p.add_argument("--pretrained-svd", metavar="DIR", help="start EgoPressDiff from a local SVD folder")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override a config key, e.g. --set train.lr=3e-4 (repeatable)")
    p.add_argument("--overwrite", action="store_true", help="delete an existing RUN folder and start afresh")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--build-cache", action="store_true",
                   help="only build (or check) the frozen-encoder cache in RUN/cache (or train.cache_dir), then exit; "
                        "train with --set train.cache_encoders=true to use it")


def run(args, callbacks=()) -> int:
    """The command; ``callbacks`` (TrainerCallback objects) go to the Trainer."""
    import shutil

    from egopressdiff.config import load_run_config
    from egopressdiff.errors import ConfigError, EgoPressDiffError
    from egopressdiff.fsutil import ensure_output_dir

    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise EgoPressDiffError(f"output path {out} is a file, not a directory")
    if args.resume and args.overwrite:
        raise ConfigError("--resume and --overwrite contradict each other: choose one")
    if args.max_steps is not None and args.max_steps <= 0:
        raise ConfigError(f"--max-steps must be > 0, got {args.max_steps}")
    # a folder holding only the encoder cache (from --build-cache) counts as empty
    non_empty = out.is_dir() and any(p.name != "cache" for p in out.iterdir())
    if args.config is None:
        if not args.resume:
            raise ConfigError("--config is required (a preset such as tiny, or a YAML file)")
        saved = out / "config.yaml"
        if not saved.is_file():
            raise ConfigError(f"cannot resume: {saved} does not exist (give --config)")
        config_src = saved
    else:
        config_src = args.config
    cfg = load_run_config(config_src, args.overrides)
    if args.pretrained_svd is not None:
        svd = Path(args.pretrained_svd)
        if not svd.is_dir():
            raise ConfigError(f"--pretrained-svd {svd} is not a folder")
        if cfg["model"]["model_type"] != "egopressdiff":
            raise ConfigError(f"--pretrained-svd only applies to model_type egopressdiff, "
                              f"not {cfg['model']['model_type']}")
    if cfg["data"]["source"] == "egopressure":
        if args.data is None:
            raise ConfigError("--data ROOT is required")
        if not Path(args.data).is_dir():
            raise EgoPressDiffError(f"dataset root {args.data} does not exist or is not a folder")
    if non_empty and not args.resume:
        if not args.overwrite:
            raise EgoPressDiffError(f"output {out} already exists and is not empty "
                                    "(use --resume to continue it or --overwrite to start afresh)")
        import os

        # only the main process clears the folder (torchrun starts one command per rank)
        if int(os.environ.get("RANK", "0")) == 0:
            for p in out.iterdir():  # the encoder cache is kept: its fingerprint says whether it is still valid
                if p.name != "cache":
                    shutil.rmtree(p) if p.is_dir() else p.unlink()
    created = not out.exists()
    ensure_output_dir(out, "output")

    from egopressdiff.training.loop import train

    try:
        summary = train(cfg, args.data, out, resume=args.resume, max_steps=args.max_steps,
                        pretrained_svd=args.pretrained_svd, progress=not args.no_progress,
                        cache_only=args.build_cache, callbacks=callbacks)
    except BaseException:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # a run that failed before writing anything leaves no empty folder behind
        raise
    return int(summary["exit_code"])
