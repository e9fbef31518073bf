"""Measure the target latents of the training participants and print the EDM constants they imply.

    python scripts/target_stats.py --config tiny-uv --data DATA [--set model.k=v ...] [--split train]
    python scripts/target_stats.py --config svd --pretrained-svd SVD_DIR --data DATA
    python scripts/target_stats.py --checkpoint RUN_OR_MODEL --data DATA

The model (its codec and target transform) comes from a run config (a preset or YAML, with
``--set`` overrides), a saved model, or a local SVD folder (the SVD VAE's latents). Every frame
the split's training clips cover is encoded; the mean, std, RMS and largest |z| of the latents
are printed with the ``edm`` values that follow (egopressdiff.diffusion.target_stats) as
``--set`` flags for ``egopressdiff train``.
"""

from __future__ import annotations

import argparse
import json
import sys


def build(args):
    from egopressdiff.config import load_run_config

    if args.checkpoint:
        from egopressdiff.shipped import resolve_checkpoint
        from egopressdiff.training.registry import load_model

        return load_model(resolve_checkpoint(args.checkpoint))
    cfg = load_run_config(args.config, args.overrides)
    if cfg["model"].get("model_type") != "egopressdiff":
        from egopressdiff.errors import ConfigError

        raise ConfigError(f"{args.config}: target statistics are for model_type egopressdiff")
    if args.pretrained_svd:
        from egopressdiff.models import EgoPressDiff

        fields = {k: v for k, v in cfg["model"].items() if k not in ("model_type", "preset", "name")}
        return EgoPressDiff.from_svd(args.pretrained_svd, **fields)
    from egopressdiff.training.registry import build_model

    return build_model(cfg["model"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--config", help="run config: a preset name or a YAML file")
    src.add_argument("--checkpoint", help="a saved model (shipped name, run folder or model folder)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    ap.add_argument("--pretrained-svd", metavar="DIR", help="use the VAE of this local SVD folder")
    ap.add_argument("--data", required=True, help="dataset root (EgoPressure layout)")
    ap.add_argument("--split", default="train")
    ap.add_argument("--max-frames", type=int, default=None, help="an evenly spaced subset of at most this many")
    ap.add_argument("--json", default=None)
    ap.add_argument("--progress", action="store_true")
    args = ap.parse_args(argv)
    from egopressdiff.errors import EgoPressDiffError

    try:
        from egopressdiff.data.clips import ClipDataset
        from egopressdiff.diffusion.target_stats import edm_constants, measure_target_stats
        from egopressdiff.runtime import configure_cpu_threads

        configure_cpu_threads()
        model = build(args).eval()
        req = model.data_requirements()
        ds = ClipDataset(args.data, split=args.split, clip_length=req["clip_length"], stride=req["clip_length"],
                         crop_size=req["crop_size"], skip_short=True)
        stats = measure_target_stats(model, ds, max_frames=args.max_frames, progress=args.progress)
    except EgoPressDiffError as e:
        print(f"target_stats: error: {e.one_line()}", file=sys.stderr)
        return 2
    edm = edm_constants(stats)
    print(f"target latents ({args.split}, {stats.frames} frames, transform "
          f"{getattr(model.config, 'target_transform', 'legacy_minus1')}): mean {stats.mean:.4f}, std {stats.std:.4f}, "
          f"rms {stats.rms:.4f}, max |z| {stats.abs_max:.3f}, zero {stats.zero_fraction:.1%}")
    print(" ".join(f"--set model.edm.{k}={v}" for k, v in edm.items()))
    if args.json:
        from egopressdiff.fsutil import atomic_write_text

        atomic_write_text(args.json, json.dumps({"stats": stats.to_dict(), "edm": edm, "split": args.split,
                                                 "data": str(args.data)}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
