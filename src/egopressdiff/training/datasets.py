"""The datasets a run trains and validates on: EgoPressure clips, a registered data source,
or the frozen-encoder cache of either (training/cache.py)."""

from __future__ import annotations

from pathlib import Path

from egopressdiff.errors import ConfigError


def build_datasets(data_opts: dict, data_root, model, need_val: bool):
    """(train, val or None) datasets for the resolved data options."""
    if data_opts["source"] != "egopressure":
        from egopressdiff.training.registry import data_source_builder

        build = data_source_builder(data_opts["source"])
        return (build(data_opts, model, data_opts["train_split"], data_root),
                build(data_opts, model, data_opts["val_split"], data_root) if need_val else None)
    if data_root is None:
        raise ConfigError("training needs a dataset: pass --data ROOT")
    from egopressdiff.data.clips import ClipDataset

    kw = {k: data_opts[k] for k in ("clip_length", "stride", "crop_size", "uv_size", "uv_conditioning",
                                     "uv_cond_size", "mesh") if data_opts.get(k) is not None}
    train_ds = ClipDataset(data_root, split=data_opts["train_split"], augment=data_opts["augment"], **kw)
    val_ds = ClipDataset(data_root, split=data_opts["val_split"], augment=False, **kw) if need_val else None
    if data_opts.get("cache_in_memory"):
        from egopressdiff.data.memory_cache import MemoryCachedDataset

        if data_opts["augment"]:
            raise ConfigError("config key data.cache_in_memory needs data.augment=false")
        train_ds = MemoryCachedDataset(train_ds)
        val_ds = MemoryCachedDataset(val_ds) if val_ds is not None else None
    return train_ds, val_ds


def use_encoder_cache(model, data_opts, train_ds, val_ds, tcfg, run: Path, accelerator, progress: bool, log):
    """Swap the clip datasets for their frozen-encoder caches (built by the main process if needed).

    Returns (train, val or None, cache folder).
    """
    from egopressdiff.training.cache import check_cacheable, prepare_cache

    check_cacheable(model, data_opts)
    cache_root = Path(tcfg["cache_dir"]) if tcfg.get("cache_dir") else run / "cache"
    model.to(accelerator.device)  # prepare() would move it anyway; the encoders run there
    kw = dict(batch_size=tcfg["batch_size"], num_workers=data_opts["num_workers"], device=accelerator.device,
              progress=progress, log=log)
    out = []
    for name, ds in (("train", train_ds), ("val", val_ds)):
        if ds is None:
            out.append(None)
            continue
        if accelerator.is_main_process:
            prepare_cache(model, ds, cache_root, name, **kw)
        accelerator.wait_for_everyone()
        out.append(prepare_cache(model, ds, cache_root, name, build=False, **{**kw, "log": None}))
    return out[0], out[1], cache_root
