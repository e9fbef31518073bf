"""The denoiser's error against the noise level on held-out clips, and the target latents' statistics.

    python benchmarks/denoiser_error.py --checkpoint synthetic-egopressdiff --data DATA \\
        [--split test] [--sigmas 0.02 0.05 ... 80] [--max-clips N] [--seed 0] [--json OUT]

For every held-out clip (non-overlapping clips of the split's sequences) and every sigma of the
grid: z = the clip's target latents, x = z + sigma * n with seeded unit noise n, and the latent
RMS error of the denoised estimate, sqrt(mean((D(x; sigma) - z)^2)), over all latent elements.
Reported overall, on the no-contact (hover) sequences' clips and on the clips whose ground truth has contact (> 1 kPa somewhere), plus the
median over hover frames of the decoded estimate's maximum on the hand (kPa): the spurious
pressure a sampler step at that sigma hands on.

An optimal denoiser's error can only fall as sigma falls (less noise, more information); an error
that rises towards small sigma is the network failing to cancel its input's noise.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

DEFAULT_SIGMAS = (0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 40.0, 80.0)
CONTACT_KPA = 1.0


def held_out_clips(model, data, split: str, max_clips: int | None = None):
    """Non-overlapping clips of ``split`` with the model's inputs, and whether each is a hover clip."""
    from egopressdiff.data.clips import ClipDataset
    from egopressdiff.data.layout import gesture_family
    from egopressdiff.evaluation.metrics import HOVER_FAMILY

    req = model.data_requirements()
    ds = ClipDataset(data, split=split, clip_length=req["clip_length"], stride=req["clip_length"],
                     crop_size=req["crop_size"], uv_conditioning=req["uv_conditioning"],
                     uv_cond_size=req["uv_cond_size"], skip_short=True)
    n = len(ds) if max_clips is None else min(len(ds), max_clips)
    # spread a limited budget over the whole split rather than its first sequences
    idx = sorted({round(i * len(ds) / n) for i in range(n)}) if n else []
    for i in idx:
        _, s, _ = ds.clips[i]
        yield ds[i], gesture_family(s) == HOVER_FAMILY


def clip_errors(model, item: dict, sigmas, seed: int) -> dict:
    """Per-sigma squared-error sums for one clip (no batch dim in ``item``)."""
    import torch

    from egopressdiff.inference import _to_batch

    batch = _to_batch(item)
    with torch.no_grad():
        z = model.encode_targets(batch)["target_latents"]
        prep = model.prepare_conditions(batch)
        uv_mask = batch["uv_mask"]
        out = {"n": z.numel(), "sum_z": float(z.sum()), "sum_z2": float(z.pow(2).sum()), "sse": [], "max_kpa": []}
        for j, s in enumerate(sigmas):
            g = torch.Generator().manual_seed(seed * 1_000_003 + j)
            noise = torch.randn(z.shape, generator=g)
            sigma = torch.tensor([float(s)])
            den = model.denoise(z + float(s) * noise, sigma, prep)
            out["sse"].append(float((den - z).pow(2).sum()))
            kpa = model.decode_to_kpa(den, uv_mask)  # (1, N, 224, 224), masked
            out["max_kpa"].append(kpa.flatten(2).amax(-1).reshape(-1).tolist())
    return out


def measure(checkpoint, data, split: str = "test", sigmas=DEFAULT_SIGMAS, max_clips: int | None = None,
            seed: int = 0, progress: bool = False) -> dict:
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    from egopressdiff.runtime import configure_cpu_threads
    from egopressdiff.shipped import resolve_checkpoint
    from egopressdiff.training.registry import load_model

    configure_cpu_threads()
    model = load_model(resolve_checkpoint(checkpoint)).eval()
    groups = {g: {"n": 0, "sse": np.zeros(len(sigmas)), "clips": 0}
              for g in ("all", "hover", "contact")}
    stats = {"n": 0, "sum": 0.0, "sum2": 0.0}
    hover_max = [[] for _ in sigmas]
    for k, (item, hover) in enumerate(tqdm(held_out_clips(model, data, split, max_clips), disable=not progress,
                                           desc="clips", unit="clip")):
        r = clip_errors(model, item, sigmas, seed * 7919 + k)
        contact = bool((item["pressure"] > CONTACT_KPA).any())
        names = ["all"] + (["hover"] if hover else []) + (["contact"] if contact else [])
        for g in names:
            acc = groups[g]
            acc["n"] += r["n"]
            acc["sse"] += r["sse"]
            acc["clips"] += 1
        stats["n"] += r["n"]
        stats["sum"] += r["sum_z"]
        stats["sum2"] += r["sum_z2"]
        if hover:
            for j, m in enumerate(r["max_kpa"]):
                hover_max[j].extend(m)
    if stats["n"] == 0:
        from egopressdiff.errors import DataError

        raise DataError(f"no clips of {model.config.clip_length} annotated frames in split {split!r}", path=data)
    mean = stats["sum"] / stats["n"]
    cfg = model.config
    rows = []
    for j, s in enumerate(sigmas):
        row = {"sigma": float(s)}
        for g, acc in groups.items():
            row[f"rms_{g}"] = math.sqrt(acc["sse"][j] / acc["n"]) if acc["n"] else None
        row["hover_median_max_kpa"] = float(np.median(hover_max[j])) if hover_max[j] else None
        rows.append(row)
    return {
        "checkpoint": str(checkpoint), "data": str(data), "split": split, "seed": seed,
        "clips": {g: acc["clips"] for g, acc in groups.items()},
        "target_latents": {"mean": mean, "std": math.sqrt(max(stats["sum2"] / stats["n"] - mean**2, 0.0)),
                           "rms": math.sqrt(stats["sum2"] / stats["n"])},
        "model": {"target_transform": getattr(cfg, "target_transform", "legacy_minus1"),
                  "edm": {k: cfg.edm[k] for k in ("sigma_data", "p_mean", "p_std", "sigma_min", "sigma_max")},
                  "vertex_tokens": getattr(cfg, "vertex_tokens", "pooled")},
        "rows": rows,
        "torch_threads": torch.get_num_threads(),
    }


def format_result(res: dict) -> str:
    def f(v, nd=4):
        return "-" if v is None else f"{v:.{nd}f}"

    t = res["target_latents"]
    c = res["clips"]
    out = [f"target latents ({res['split']} clips): mean {t['mean']:.4f}, std {t['std']:.4f}, rms {t['rms']:.4f}; "
           f"clips: {c['all']} ({c['hover']} hover, {c['contact']} with contact)",
           f"model: {json.dumps(res['model'])}",
           f"{'sigma':>7} {'RMS all':>8} {'hover':>8} {'contact':>8} {'hover max kPa':>13}"]
    for r in res["rows"]:
        out.append(f"{r['sigma']:>7g} {f(r['rms_all']):>8} {f(r['rms_hover']):>8} "
                   f"{f(r['rms_contact']):>8} {f(r['hover_median_max_kpa'], 2):>13}")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, help="shipped model name, run folder or model folder")
    ap.add_argument("--data", required=True, help="dataset root (EgoPressure layout)")
    ap.add_argument("--split", default="test", help="held-out participants: test or val (default test)")
    ap.add_argument("--sigmas", type=float, nargs="+", default=list(DEFAULT_SIGMAS))
    ap.add_argument("--max-clips", type=int, default=None, help="at most this many clips, spread over the split")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    ap.add_argument("--progress", action="store_true")
    args = ap.parse_args(argv)
    from egopressdiff.errors import EgoPressDiffError

    if any(not s > 0 for s in args.sigmas):
        print("denoiser_error: error: every --sigmas value must be > 0", file=sys.stderr)
        return 2
    try:
        res = measure(args.checkpoint, args.data, args.split, args.sigmas, args.max_clips, args.seed, args.progress)
    except EgoPressDiffError as e:
        print(f"denoiser_error: error: {e.one_line()}", file=sys.stderr)
        return 2
    print(format_result(res))
    if args.json:
        from egopressdiff.fsutil import atomic_write_text

        atomic_write_text(args.json, json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
