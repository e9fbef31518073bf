"""Frozen-encoder cache: what a training step needs, precomputed once per clip.

EgoPressDiff's codec (VAE / pixel-unshuffle) and CLIP image encoder are frozen by default,
so their outputs for a clip never change during training: ``encode_targets`` ->
``target_latents``, ``encode_conditions`` -> ``clip_embeds`` (+ ``depth_latents`` in image
space). The cache stores them per clip together with the other inputs the trainable parts
read (``vertices``, ``pose_map`` or ``uv_cond``, ``uv_mask``), so a cached training step
neither runs the frozen encoders nor rebuilds the clip from the dataset (JPEG decoding,
depth registration, cropping, skeleton drawing) -- on a small model the second saving is
the larger one (see the Performance section of the README).

Layout (one folder per dataset split, under ``RUN/cache/`` or ``train.cache_dir``)::

    <cache_root>/<name>-<fingerprint[:16]>/index.json          fingerprint, keys, clips, shards
    <cache_root>/<name>-<fingerprint[:16]>/shard-00000.safetensors   key -> (K, ...) rows of K clips

The fingerprint hashes the dataset's files (relative path, size, mtime of every file of the
used sequences), the clip options and clip list, the frozen encoders' weights and the model
config fields that change their outputs, and the cache format version. A changed fingerprint
names another folder: the stale folder of the same name is deleted and a new one is built.
Folders are written with :func:`egopressdiff.fsutil.atomic_dir` (they appear complete or not
at all). Nothing in a cache is a pickle.

Caching needs items that are a function of their index: ``data.augment`` must be off (it is
refused otherwise), and the encoders must be frozen (``train_codec`` / ``train_image_encoder``
false).
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import torch

from egopressdiff.errors import ConfigError, DataError

CACHE_VERSION = 1
INDEX_NAME = "index.json"
SHARD_BYTES = 128 * 2**20  # a shard is closed once its rows reach this size
PASSTHROUGH_KEYS = ("vertices", "pose_map", "uv_cond", "uv_mask")


# ---------------------------------------------------------------------------------------------- checks
def check_cacheable(model, data_opts: dict | None = None) -> None:
    """ConfigError unless ``model`` has frozen encoders whose outputs may be cached for this data."""
    if not (hasattr(model, "encode_conditions") and hasattr(model, "encode_targets")):
        raise ConfigError("config key train.cache_encoders: this model type has no frozen encoders to cache "
                          "(only model_type egopressdiff has)")
    cfg = model.config
    if cfg.train_codec or cfg.train_image_encoder:
        raise ConfigError("config key train.cache_encoders needs frozen encoders (model train_codec and "
                          "train_image_encoder false): trained encoders change their outputs every step")
    ve = getattr(model, "vertex_encoder", None)
    if ve is not None and getattr(ve, "image_features", 0) > 0:
        raise ConfigError("config key train.cache_encoders does not support model.vertex_encoder.image_features > 0 "
                          "yet (the crops would have to be cached too); use data.cache_in_memory instead")
    if data_opts is not None:
        if data_opts.get("source", "egopressure") != "egopressure":
            raise ConfigError("config key train.cache_encoders only works with data.source=egopressure")
        if data_opts.get("augment"):
            raise ConfigError("config key train.cache_encoders needs data.augment=false: augmented clips differ "
                              "every epoch, so their encoder outputs cannot be cached")


def needed_keys(model) -> list[str]:
    """The batch keys a cached training step reads, besides the frozen outputs."""
    c = model.config
    keys = ["uv_mask"]
    if getattr(model, "vertex_encoder", None) is not None:
        keys.append("vertices")
    if c.cond_space == "image":
        if c.use_posenet:
            keys.append("pose_map")
    else:
        keys.append("uv_cond")
    return keys


# ---------------------------------------------------------------------------------------------- fingerprint
def frozen_weights_hash(model) -> str:
    """blake2b of the frozen encoders' state dicts (names, dtypes, shapes, bytes)."""
    h = hashlib.blake2b(digest_size=20)
    for prefix, module in (("codec", model.codec), ("image_encoder", model.image_encoder)):
        for name, t in sorted(module.state_dict().items()):
            t = t.detach()
            h.update(f"{prefix}.{name}:{t.dtype}:{tuple(t.shape)};".encode())
            if t.device.type == "meta":
                continue
            t = t.cpu().contiguous()
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def dataset_listing(dataset) -> list:
    """[relative path, size, mtime_ns] of every file of the dataset's sequences (configs and shards)."""
    from egopressdiff.data import layout

    root = Path(dataset.reader.root)
    files = set()
    for p, s in dataset.sequences:
        files.add(layout.config_path(root, p, s))
        k4a = layout.k4a_calibration_path(root, p, s).parent
        if k4a.is_dir():
            files.update(f for f in k4a.rglob("*") if f.is_file())
        seq = layout.sequence_dir(root, p, s)
        if seq.is_dir():
            files.update(f for f in seq.rglob("*") if f.is_file())
    out = []
    for f in sorted(files):
        try:
            st = f.stat()
        except FileNotFoundError:
            continue
        out.append([str(f.relative_to(root)), st.st_size, st.st_mtime_ns])
    return out


MODEL_FIELDS = ("codec", "clip", "clip_image_mean", "clip_image_std", "uv_size", "pressure_scale_kpa",
                "pressure_max_kpa", "cond_space", "use_depth", "use_posenet", "use_vertices", "clip_length",
                "crop_size", "uv_cond_size", "target_transform")


def cache_fingerprint(model, dataset) -> tuple[str, dict]:
    """(sha256 hex, the description it hashes) for ``model``'s frozen encoders on ``dataset``."""
    cfg = model.config.to_dict()
    desc = {
        "version": CACHE_VERSION,
        "dataset": {"root_files": dataset_listing(dataset),
                    "options": {k: getattr(dataset, k) for k in ("clip_length", "stride", "crop_size", "uv_size",
                                                                  "uv_conditioning", "uv_cond_size", "augment")},
                    "clips": [list(c) for c in dataset.clips]},
        "encoders": frozen_weights_hash(model),
        "model": {k: cfg.get(k) for k in MODEL_FIELDS},
        "keys": needed_keys(model),
    }
    blob = json.dumps(desc, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest(), desc


# ---------------------------------------------------------------------------------------------- dataset
class CachedClipDataset(torch.utils.data.Dataset):
    """A cache folder read as a dataset: item i is clip i of the dataset it was built from.

    Items hold the frozen outputs (``target_latents``, ``clip_embeds``, ``depth_latents``), the
    cached inputs of the trainable parts, ``frame`` and the identity strings -- what
    ``EgoPressDiff.training_loss`` reads. Rows are read lazily (memory-mapped safetensors).
    """

    def __init__(self, folder):
        self.folder = Path(folder)
        try:
            self.index = json.loads((self.folder / INDEX_NAME).read_text())
        except (OSError, ValueError) as e:
            raise DataError(f"unreadable encoder cache index ({e})", path=self.folder / INDEX_NAME) from None
        self.fingerprint = self.index["fingerprint"]
        self.clips = [tuple(c) for c in self.index["clips"]]
        self.clip_length = int(self.index["clip_length"])
        self.encodings = self.index["encodings"]
        self._starts = [s["start"] for s in self.index["shards"]]
        self._handles: dict = {}
        self._pid = None

    def __len__(self) -> int:
        return len(self.clips)

    def _handle(self, k: int):
        from safetensors import safe_open

        if self._pid != os.getpid():  # a DataLoader worker: open its own handles
            self._handles, self._pid = {}, os.getpid()
        if k not in self._handles:
            self._handles[k] = safe_open(str(self.folder / self.index["shards"][k]["file"]), framework="pt")
        return self._handles[k]

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < len(self.clips):
            raise IndexError(i)
        k = bisect.bisect_right(self._starts, i) - 1
        row = i - self._starts[k]
        f = self._handle(k)
        item = {}
        for key, enc in self.encodings.items():
            t = f.get_slice(key)[row:row + 1][0]
            if enc == "u8_255":
                t = t.to(torch.float32) / 255.0
            elif enc == "u8":
                t = t.to(torch.float32)
            item[key] = t
        participant, sequence, first, hand_side = self.clips[i]
        item["frame"] = torch.arange(first, first + self.clip_length, dtype=torch.int64)
        item["participant"], item["sequence"], item["hand_side"] = participant, sequence, hand_side
        return item


# ---------------------------------------------------------------------------------------------- building
def _encode_for_storage(key: str, t: torch.Tensor) -> tuple[torch.Tensor, str]:
    """Lossless compact storage: {0,1} masks and /255 images as uint8 when that is exact."""
    t = t.detach().cpu()
    if key in ("uv_mask", "pose_map") and t.dtype == torch.float32:
        u8 = torch.round(t * 255.0).clamp(0, 255).to(torch.uint8)
        if torch.equal(u8.to(torch.float32) / 255.0, t):
            return u8, "u8_255"
        b = t.to(torch.uint8)
        if torch.equal(b.to(torch.float32), t):
            return b, "u8"
    return t.contiguous(), "raw"


def _send(batch: dict, device) -> dict:
    return {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}


def build_cache(model, dataset, folder, *, fingerprint: str | None = None, batch_size: int = 2, num_workers: int = 0,
                device=None, progress: bool = True) -> CachedClipDataset:
    """Encode every clip of ``dataset`` and write the cache folder atomically (replacing an old one)."""
    from safetensors.torch import save_file
    from tqdm.auto import tqdm

    from egopressdiff.fsutil import atomic_dir

    check_cacheable(model)
    if getattr(dataset, "augment", False):
        raise ConfigError("an encoder cache needs a dataset without augmentation")
    if fingerprint is None:
        fingerprint = cache_fingerprint(model, dataset)[0]
    device = torch.device(device) if device is not None else next(model.parameters()).device
    keys = needed_keys(model)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                                         generator=torch.Generator().manual_seed(0))  # no draw from global RNG
    was_training = model.training
    model.eval()
    t0 = time.perf_counter()
    shards, encodings, rows, row_bytes, start, sides = [], {}, {}, 0, 0, []
    folder = Path(folder)
    try:
        with atomic_dir(folder, overwrite=True) as tmp:
            def flush():
                nonlocal rows, row_bytes, start
                if not rows:
                    return
                name = f"shard-{len(shards):05d}.safetensors"
                tensors = {k: torch.stack(v).contiguous() for k, v in rows.items()}
                n = len(next(iter(rows.values())))
                save_file(tensors, str(tmp / name))
                shards.append({"file": name, "start": start, "clips": n, "bytes": (tmp / name).stat().st_size})
                start += n
                rows, row_bytes = {}, 0

            bar = tqdm(total=len(dataset), desc="cache", unit="clip", disable=not progress)
            with torch.no_grad():
                for batch in loader:
                    b = _send(batch, device)
                    out = {**model.encode_targets(b), **model.encode_conditions(b)}
                    out.update({k: batch[k] for k in keys})
                    sides.extend(batch["hand_side"])
                    for i in range(len(batch["participant"])):
                        for k, v in out.items():
                            t, enc = _encode_for_storage(k, v[i])
                            if encodings.setdefault(k, enc) != enc:  # keep one encoding per key
                                raise RuntimeError(f"cache key {k}: rows disagree on storage ({enc} vs {encodings[k]})")
                            rows.setdefault(k, []).append(t)
                            row_bytes += t.numel() * t.element_size()
                    bar.update(len(batch["participant"]))
                    if row_bytes >= SHARD_BYTES:
                        flush()
            flush()
            bar.close()
            clips = [[p, s, int(first), side] for (p, s, first), side in zip(dataset.clips, sides)]
            index = {"version": CACHE_VERSION, "fingerprint": fingerprint, "clip_length": dataset.clip_length,
                     "encodings": encodings, "shards": shards, "clips": clips,
                     "build_seconds": round(time.perf_counter() - t0, 3)}
            (tmp / INDEX_NAME).write_text(json.dumps(index))
    finally:
        model.train(was_training)
    return CachedClipDataset(folder)


def _valid(folder: Path, fingerprint: str) -> bool:
    try:
        index = json.loads((folder / INDEX_NAME).read_text())
    except (OSError, ValueError):
        return False
    if index.get("version") != CACHE_VERSION or index.get("fingerprint") != fingerprint:
        return False
    for s in index.get("shards", []):
        p = folder / s["file"]
        if not p.is_file() or p.stat().st_size != s["bytes"]:
            return False
    return True


def prepare_cache(model, dataset, cache_root, name: str = "train", *, build: bool = True, batch_size: int = 2,
                  num_workers: int = 0, device=None, progress: bool = True, log=None) -> CachedClipDataset:
    """Open the cache of ``dataset`` under ``cache_root`` (built now if missing or stale).

    ``build=False`` only opens (other DDP ranks, after the main process built it); a missing
    or stale cache is then a DataError.
    """
    check_cacheable(model)
    fp, _ = cache_fingerprint(model, dataset)
    root = Path(cache_root)
    folder = root / f"{name}-{fp[:16]}"
    if _valid(folder, fp):
        if log:
            log(f"using the encoder cache {folder}")
        return CachedClipDataset(folder)
    if not build:
        raise DataError("encoder cache missing or stale (the main process should have built it)", path=folder)
    if root.is_dir():  # stale caches of this split (data or encoders changed)
        for old in root.glob(f"{name}-*"):
            if old.is_dir() and old != folder:
                shutil.rmtree(old, ignore_errors=True)
    if log:
        log(f"building the encoder cache {folder} ({len(dataset)} clips)")
    return build_cache(model, dataset, folder, fingerprint=fp, batch_size=batch_size, num_workers=num_workers,
                       device=device, progress=progress)


def cache_size_bytes(dataset: CachedClipDataset) -> int:
    return int(sum(s["bytes"] for s in dataset.index["shards"]))
