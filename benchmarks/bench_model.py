"""Model benchmark (the full set of figures is `egopressdiff bench`, egopressdiff/bench.py): parameter counts (tiny, svd), CPU time of a tiny training step and of a
16-frame tiny sampling pass, and the tiny codec's round-trip floor (kPa MAE).

    python benchmarks/bench_model.py [--frames 16] [--batch 2] [--steps 8] [--repeats 3] [--json OUT]

The svd model (2.3 B parameters) is built on the ``meta`` device: same architecture and
counts, no 9 GB allocation. Times are medians over ``--repeats`` after one warm-up run.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch


def _median_time(fn, repeats: int) -> float:
    from egopressdiff.bench import median_time

    return median_time(fn, repeats, warmup=1)  # warm-up: allocator, oneDNN primitives


def codec_floor(uv_sizes=(56, 64, 112, 224), n_maps: int = 24) -> dict:
    """Round trip 224 -> uv_size -> 224 (kPa) on contact maps of the procedural hand pressed into the pad."""
    from egopressdiff.data.hand import HandPose, build_hand, rot_x, rot_y
    from egopressdiff.data.physics import PressureBaker, contact_pressure
    from egopressdiff.models.codecs import resize_maps

    hand = build_hand("right")
    baker = PressureBaker(hand.atlas)
    rng = np.random.default_rng(0)
    maps = []
    while len(maps) < n_maps:
        p = HandPose()
        p.flex = rng.uniform(0, 0.6, (5, 3))
        p.rot = rot_x(rng.uniform(-0.25, 0.25)) @ rot_y(rng.uniform(-0.25, 0.25)) @ rot_x(np.pi)
        v, _ = hand.pose(p)
        v = v - [0, 0, v[:, 2].max() - rng.uniform(0.001, 0.008)]  # 1-8 mm into the pad (+z down)
        kpa = contact_pressure(hand, v, baker).kpa_map
        if kpa.max() > 1.0:
            maps.append(kpa)
    gt = torch.tensor(np.stack(maps)).float()[:, None]
    mask = torch.tensor(hand.atlas.mask(224)).float()
    out = {"maps": n_maps, "mean_gt_kpa": float(gt.mean()), "max_gt_kpa": float(gt.max())}
    for s in uv_sizes:
        back = resize_maps(resize_maps(gt, s), 224).clamp(min=0) * mask
        inter = ((back > 1) & (gt > 1)).sum().item()
        union = ((back > 1) | (gt > 1)).sum().item()
        out[f"uv{s}"] = {"mae_kpa": float((back - gt).abs().mean()), "contact_iou": inter / union,
                         "volumetric_iou": float(torch.minimum(back, gt).sum() / torch.maximum(back, gt).sum())}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    from egopressdiff.models import EgoPressDiff
    from egopressdiff.models.testing import make_dummy_batch
    from egopressdiff.pipelines import EgoPressDiffPipeline

    result = {"torch_threads": torch.get_num_threads()}
    torch.manual_seed(0)
    tiny = EgoPressDiff.from_config("tiny", clip_length=args.frames)
    result["params_tiny"] = tiny.parameter_counts()
    result["params_svd"] = EgoPressDiff.from_config("svd", device="meta").parameter_counts()

    batch = make_dummy_batch(args.batch, args.frames, crop_size=tiny.config.crop_size)
    opt = torch.optim.AdamW(tiny.trainable_parameters(), lr=1e-4)

    def train_step():
        opt.zero_grad(set_to_none=True)
        tiny.training_loss(batch).backward()
        opt.step()

    cached = {**batch, **tiny.encode_conditions(batch), **tiny.encode_targets(batch)}

    def train_step_cached():
        opt.zero_grad(set_to_none=True)
        tiny.training_loss(cached).backward()
        opt.step()

    one = make_dummy_batch(1, args.frames, crop_size=tiny.config.crop_size)
    result["tiny_train_step_s"] = _median_time(train_step, args.repeats)
    result["tiny_train_step_cached_s"] = _median_time(train_step_cached, args.repeats)
    result["tiny_sample_s"] = _median_time(lambda: EgoPressDiffPipeline(tiny).sample(one, num_inference_steps=args.steps, seed=0), args.repeats)
    result["setup"] = {"frames": args.frames, "train_batch": args.batch, "sample_batch": 1, "steps": args.steps}
    try:
        result["codec_floor"] = codec_floor()
    except ImportError as e:  # the procedural hand lives in egopressdiff.data
        result["codec_floor"] = f"skipped: {e}"

    print(f"torch threads: {result['torch_threads']}")
    for name in ("tiny", "svd"):
        print(f"parameters ({name}):")
        for k, v in result[f"params_{name}"].items():
            print(f"  {k:16s} {v:>14,d}")
    print(f"tiny training step  (B={args.batch}, {args.frames} frames): {result['tiny_train_step_s']:.3f} s "
          f"(with cached frozen outputs {result['tiny_train_step_cached_s']:.3f} s)")
    print(f"tiny sampling pass  (B=1, {args.frames} frames, {args.steps} Euler steps): {result['tiny_sample_s']:.3f} s")
    floor = result["codec_floor"]
    if isinstance(floor, dict):
        print(f"codec floor on {floor['maps']} contact maps (mean {floor['mean_gt_kpa']:.3f} kPa):")
        for k, v in floor.items():
            if k.startswith("uv"):
                print(f"  {k:6s} MAE {v['mae_kpa']:.4f} kPa  contact IoU {v['contact_iou']:.3f}  "
                      f"volumetric IoU {v['volumetric_iou']:.3f}")
    if args.json:
        from egopressdiff.fsutil import atomic_write_text

        atomic_write_text(args.json, json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
