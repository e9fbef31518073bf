"""Training checkpoints without pickle, written atomically.

Layout of ``RUN/checkpoints/step-000123/``::

    model/                  the model's save_pretrained folder (config.json + safetensors)
    optimizer.safetensors   optimizer tensors; optimizer.json the rest of its state dict
    scheduler.json          LR scheduler state
    scaler.json             fp16 grad-scaler state (only with mixed_precision fp16)
    ema.safetensors/.json   EMA weights of the trainable parameters (only with train.ema)
    rng/rank-<r>.*          RNG states of process r: python, numpy, torch CPU, CUDA
    state.json              step, epoch and position in the data stream, world size, losses
    complete                written last

A checkpoint is built in ``.step-000123.tmp`` (every process writes its RNG file there),
files are fsynced, ``complete`` is written, and the folder is renamed to ``step-000123``.
So a folder named ``step-*`` holding ``complete`` is whole; anything else (a ``.tmp``
left by a crash, a folder being pruned) is ignored by :func:`list_checkpoints` and
cleaned up by :func:`clean_stale`. Tensors go to safetensors, everything else to JSON, so
loading a checkpoint never unpickles anything.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from egopressdiff.errors import CheckpointError
from egopressdiff.fsutil import fsync_path, fsync_tree

FORMAT_VERSION = 1
COMPLETE = "complete"
_NAME = re.compile(r"^step-(\d{6,})$")


def checkpoint_name(step: int) -> str:
    return f"step-{step:06d}"


# ----------------------------------------------------------------------------- discovery
def is_complete(path: Path) -> bool:
    return (path / COMPLETE).is_file() and (path / "state.json").is_file()


def list_checkpoints(ckpt_root: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints under ``ckpt_root`` as (step, path), oldest first."""
    root = Path(ckpt_root)
    if not root.is_dir():
        return []
    out = []
    for p in root.iterdir():
        m = _NAME.match(p.name)
        if m and p.is_dir() and is_complete(p):
            out.append((int(m.group(1)), p))
    return sorted(out)


def latest_checkpoint(ckpt_root: str | Path) -> Path | None:
    """The newest complete checkpoint, or None."""
    ckpts = list_checkpoints(ckpt_root)
    return ckpts[-1][1] if ckpts else None


def clean_stale(ckpt_root: str | Path) -> list[Path]:
    """Remove temporary and half-deleted checkpoint folders (left by a crash); returns them."""
    root = Path(ckpt_root)
    removed = []
    if root.is_dir():
        for p in root.iterdir():
            if p.name.startswith(".step-") and (p.name.endswith(".tmp") or p.name.endswith(".del")):
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
    return removed


def prune(ckpt_root: str | Path, keep: int) -> None:
    """Keep the newest ``keep`` complete checkpoints; older ones are renamed away, then deleted."""
    for _step, p in list_checkpoints(ckpt_root)[:-keep] if keep > 0 else []:
        # rename first: a crash half-way through rmtree must not leave a folder named step-*
        dead = p.with_name(f".{p.name}.del")
        os.replace(p, dead)
        shutil.rmtree(dead, ignore_errors=True)


# ----------------------------------------------------------------------------- trees of tensors
def flatten_state(tree: Any) -> tuple[Any, dict[str, torch.Tensor]]:
    """Split a state tree (dicts, lists, tuples, tensors, numbers, strings) into JSON + tensors.

    Tensors are replaced by ``{"__tensor__": key}``, numpy arrays by ``{"__ndarray__": key}``,
    tuples by ``{"__tuple__": [...]}`` and dicts with non-string keys (optimizer states are keyed
    by parameter index) by ``{"__items__": [[key, value], ...]}``.
    """
    tensors: dict[str, torch.Tensor] = {}

    def enc(x, path):
        if isinstance(x, torch.Tensor):
            key = path or "_"
            tensors[key] = x.detach().cpu().contiguous()
            return {"__tensor__": key}
        if isinstance(x, np.ndarray):
            key = path or "_"
            tensors[key] = torch.from_numpy(np.ascontiguousarray(x))
            return {"__ndarray__": key}
        if isinstance(x, dict):
            if all(isinstance(k, str) and not k.startswith("__") for k in x):
                return {k: enc(v, f"{path}.{k}" if path else k) for k, v in x.items()}
            items = []
            for k, v in x.items():
                if not isinstance(k, (str, int, float, bool)) and k is not None:
                    raise CheckpointError(f"cannot store a state key of type {type(k).__name__}")
                items.append([k, enc(v, f"{path}.{k}" if path else str(k))])
            return {"__items__": items}
        if isinstance(x, tuple):
            return {"__tuple__": [enc(v, f"{path}.{i}") for i, v in enumerate(x)]}
        if isinstance(x, list):
            return [enc(v, f"{path}.{i}") for i, v in enumerate(x)]
        if isinstance(x, (np.integer, np.floating, np.bool_)):
            return x.item()
        if x is None or isinstance(x, (str, int, float, bool)):
            return x
        raise CheckpointError(f"cannot store a state value of type {type(x).__name__} at {path!r}")

    return enc(tree, ""), tensors


def unflatten_state(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`flatten_state`."""

    def dec(x):
        if isinstance(x, dict):
            if set(x) == {"__tensor__"}:
                return tensors[x["__tensor__"]]
            if set(x) == {"__ndarray__"}:
                return tensors[x["__ndarray__"]].numpy()
            if set(x) == {"__tuple__"}:
                return tuple(dec(v) for v in x["__tuple__"])
            if set(x) == {"__items__"}:
                return {k: dec(v) for k, v in x["__items__"]}
            return {k: dec(v) for k, v in x.items()}
        if isinstance(x, list):
            return [dec(v) for v in x]
        return x

    try:
        return dec(tree)
    except KeyError as e:
        raise CheckpointError(f"checkpoint state refers to a missing tensor {e}") from None


def save_tree(tree: Any, directory: Path, name: str) -> None:
    """``name.json`` (+ ``name.safetensors`` when there are tensors) in ``directory``."""
    from safetensors.torch import save_file

    structure, tensors = flatten_state(tree)
    if tensors:
        save_file(tensors, str(directory / f"{name}.safetensors"))
    (directory / f"{name}.json").write_text(json.dumps(structure))


def load_tree(directory: Path, name: str) -> Any:
    """Read what :func:`save_tree` wrote; CheckpointError when missing or unreadable."""
    from safetensors.torch import load_file

    jpath, tpath = directory / f"{name}.json", directory / f"{name}.safetensors"
    try:
        structure = json.loads(jpath.read_text())
        tensors = load_file(str(tpath)) if tpath.is_file() else {}
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint file {jpath} is missing") from None
    except Exception as e:  # safetensors raises its own error types for corrupt files
        raise CheckpointError(f"cannot read checkpoint file {tpath if tpath.exists() else jpath}: "
                              f"{' '.join(str(e).split())}") from None
    return unflatten_state(structure, tensors)


# ----------------------------------------------------------------------------- RNG states
def capture_rng() -> dict:
    """RNG states of this process: python, numpy, torch CPU and (if present) every CUDA device."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        # MT19937 keys are uint32; stored as int64 (safetensors' torch side lacks uint32 everywhere)
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    """Set the RNG states captured by :func:`capture_rng` (tolerates the tree's JSON round trip)."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    np_state = state["numpy"]
    keys = np_state[1].numpy() if isinstance(np_state[1], torch.Tensor) else np.asarray(np_state[1])
    np.random.set_state((np_state[0], keys.astype(np.uint32), *np_state[2:]))
    torch.set_rng_state(state["torch"].to(torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        cuda = list(state["cuda"])
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([c.to(torch.uint8) for c in cuda])


# ----------------------------------------------------------------------------- save / load
def save_checkpoint(
    ckpt_root: str | Path,
    step: int,
    *,
    model,
    optimizer_state: dict,
    scheduler_state: dict,
    train_state: dict,
    scaler_state: dict | None = None,
    ema_state: dict | None = None,
    rank: int = 0,
    world_size: int = 1,
    barrier: Callable[[], None] = lambda: None,
    keep: int | None = None,
    before_complete: Callable[[Path], None] | None = None,
) -> Path:
    """Write checkpoint ``step`` atomically; every process calls this (rank 0 writes the shared parts).

    ``model`` is the unwrapped model (only rank 0 uses it). ``before_complete(folder)`` runs on
    rank 0 when every file is in the temporary folder, before the checkpoint is marked complete.
    Returns the final folder.
    """
    root = Path(ckpt_root)
    final = root / checkpoint_name(step)
    tmp = root / f".{checkpoint_name(step)}.tmp"
    exists = final.is_dir() and is_complete(final)
    if rank == 0 and not exists:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "rng").mkdir(parents=True)
    barrier()
    if exists:  # resumed exactly at this step and stopped again: nothing new to write
        return final
    save_tree(capture_rng(), tmp / "rng", f"rank-{rank}")
    if rank == 0:
        model.save_pretrained(tmp / "model")
        save_tree(optimizer_state, tmp, "optimizer")
        save_tree(scheduler_state, tmp, "scheduler")
        if scaler_state is not None:
            save_tree(scaler_state, tmp, "scaler")
        if ema_state is not None:
            save_tree(ema_state, tmp, "ema")
        state = dict(train_state, step=step, world_size=world_size, format=FORMAT_VERSION)
        (tmp / "state.json").write_text(json.dumps(state, indent=1))
        if before_complete is not None:
            before_complete(tmp)
    barrier()
    if rank == 0:
        fsync_tree(tmp)
        (tmp / COMPLETE).write_text(f"{step}\n")
        fsync_tree(tmp)
        if final.exists():  # an incomplete folder under the final name (cannot normally happen)
            shutil.rmtree(final)
        os.replace(tmp, final)
        fsync_path(root)  # the rename; the files were synced above
        if keep:
            prune(root, keep)
    barrier()
    return final


def load_checkpoint(path: str | Path, rank: int = 0) -> dict:
    """Everything but the model weights: ``state``, ``optimizer``, ``scheduler``, ``scaler``,
    ``ema`` (None when absent) and ``rng`` (this rank's, None when the checkpoint was written
    by fewer processes)."""
    path = Path(path)
    if not is_complete(path):
        raise CheckpointError(f"checkpoint {path} is incomplete (no '{COMPLETE}' marker)")
    try:
        state = json.loads((path / "state.json").read_text())
    except ValueError as e:
        raise CheckpointError(f"cannot read {path / 'state.json'}: {e}") from None
    if state.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path} has format {state.get('format')!r}, expected {FORMAT_VERSION}")
    out = {"state": state, "optimizer": load_tree(path, "optimizer"), "scheduler": load_tree(path, "scheduler")}
    out["scaler"] = load_tree(path, "scaler") if (path / "scaler.json").is_file() else None
    out["ema"] = load_tree(path, "ema") if (path / "ema.json").is_file() else None
    rng_dir = path / "rng"
    out["rng"] = load_tree(rng_dir, f"rank-{rank}") if (rng_dir / f"rank-{rank}.json").is_file() else None
    return out
