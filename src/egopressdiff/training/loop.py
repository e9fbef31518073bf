"""The training loop (accelerate): one code path for a laptop CPU, ``torchrun`` / ``accelerate launch``
on CPU (gloo) or GPUs, with mixed precision and gradient accumulation.

DDP correctness: the optimizer holds the trainable parameters of one module, and every
forward goes through the accelerate-*wrapped* :class:`LossModule` (whose ``forward`` is the
model's ``training_loss``), so DDP's gradient hooks fire and all ranks hold identical
weights after every step.

Exact resume: a checkpoint stores the model, optimizer, LR schedule, grad scaler, EMA, the
RNG states of every process and the position in the data stream (epoch + batches consumed).
The data order is a pure function of (seed, epoch) (accelerate's seedable sampler) and the
loader has its own generator, so on CPU with a fixed seed a run stopped and resumed gives
bit-identical weights to one that ran straight through -- provided the dataset's items are
a function of their index (true of ClipDataset without augmentation and of the toy data).

Run folder::

    RUN/config.yaml          the resolved run config
    RUN/checkpoints/step-N/  see training/checkpoint.py
    RUN/logs/                TensorBoard events (train/loss, train/lr, val/loss, ...)
    RUN/model/               save_pretrained of the final (or interrupted) model, EMA weights if enabled
    RUN/train_summary.json   steps, wall time, last losses, validation losses, how it ended
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import random
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from egopressdiff.config import resolve_data_options, save_run_config
from egopressdiff.errors import CheckpointError, ConfigError, DataError
from egopressdiff.fsutil import atomic_dir, atomic_write_text
from egopressdiff.training import checkpoint as ckpt
from egopressdiff.training.registry import build_model, load_model, model_class, read_model_type
from egopressdiff.training.signals import GracefulStop


class LossModule(nn.Module):
    """The one module DDP wraps: ``forward(batch)`` is the model's training loss."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch):
        return self.model.training_loss(batch)


class EMA:
    """Exponential moving average of the trainable weights (kept in float32 beside them).

    The decay warms up as min(decay, (1 + n) / (10 + n)) after n updates (the schedule of
    diffusers' EMAModel): without it the average of a short run keeps much of the random
    initial weights (0.998 ** 600 = 30 % of them after 600 steps, 5 % after 1,500). Written here rather than taken from diffusers' EMAModel so that its state
    lives in our safetensors checkpoints and resumes exactly.
    """

    def __init__(self, params: list[nn.Parameter], decay: float):
        self.params = params
        self.decay = decay
        self.updates = 0
        self.shadow = [p.detach().float().clone() for p in params]

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self) -> None:
        d = self.current_decay()
        for s, p in zip(self.shadow, self.params):
            s.lerp_(p.detach().float(), 1.0 - d)
        self.updates += 1

    def state_dict(self) -> dict:
        return {"decay": self.decay, "updates": self.updates, "shadow": self.shadow}

    def load_state_dict(self, state: dict) -> None:
        if len(state["shadow"]) != len(self.shadow):
            raise ConfigError("the checkpoint's EMA does not match the model's trainable parameters")
        self.shadow = [s.to(p.device, torch.float32) for s, p in zip(state["shadow"], self.params)]
        # checkpoints written before the warm-up existed carry no count: treat them as warmed up
        self.updates = int(state.get("updates", 10**9))

    @contextlib.contextmanager
    def swapped_in(self):
        """Temporarily put the EMA weights into the model (to save it)."""
        backup = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            for p, s in zip(self.params, self.shadow):
                p.copy_(s)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, b in zip(self.params, backup):
                    p.copy_(b)


def lr_factor(step: int, warmup: int, total: int, schedule: str) -> float:
    """LR multiplier at optimizer step ``step``: linear warm-up, then constant / linear / cosine decay.

    Written out (a few lines) rather than taken from diffusers.optimization so that the
    baselines and the toy model do not pay for importing diffusers.
    """
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    if schedule == "linear":
        return max(0.0, 1.0 - progress)
    return 0.5 * (1.0 + math.cos(math.pi * progress))  # cosine


def build_datasets(data_opts: dict, data_root, model, need_val: bool):
    """(train, val or None) datasets for the resolved data options."""
    if data_opts["source"] == "toy":
        from egopressdiff.training.toy import ToyClipDataset, ToyModel

        if not isinstance(model, ToyModel):
            raise ConfigError("config key data.source=toy only works with model_type toy")
        kw = dict(size=data_opts["toy_size"], clip_length=data_opts["clip_length"],
                  crop_size=data_opts["crop_size"], map_size=model.config.map_size)
        return ToyClipDataset(split=data_opts["train_split"], **kw), (
            ToyClipDataset(split=data_opts["val_split"], **kw) if need_val else None)
    if data_root is None:
        raise ConfigError("training needs a dataset: pass --data ROOT")
    from egopressdiff.data.clips import ClipDataset

    kw = {k: data_opts[k] for k in ("clip_length", "stride", "crop_size", "uv_size", "uv_conditioning",
                                     "uv_cond_size") if data_opts.get(k) is not None}
    train_ds = ClipDataset(data_root, split=data_opts["train_split"], augment=data_opts["augment"], **kw)
    val_ds = ClipDataset(data_root, split=data_opts["val_split"], augment=False, **kw) if need_val else None
    if data_opts.get("cache_in_memory"):
        from egopressdiff.data.memory_cache import MemoryCachedDataset

        if data_opts["augment"]:
            raise ConfigError("config key data.cache_in_memory needs data.augment=false")
        train_ds = MemoryCachedDataset(train_ds)
        val_ds = MemoryCachedDataset(val_ds) if val_ds is not None else None
    return train_ds, val_ds


def _use_encoder_cache(model, data_opts, train_ds, val_ds, tcfg, run: Path, accelerator, progress: bool, log):
    """Swap the clip datasets for their frozen-encoder caches (built by the main process if needed)."""
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


def _test_step_sleep() -> None:
    # Test hook: EGOPRESSDIFF_TEST_STEP_SLEEP=<seconds> slows every step so that tests can
    # deliver signals / SIGKILL at chosen moments.
    s = os.environ.get("EGOPRESSDIFF_TEST_STEP_SLEEP")
    if s:
        time.sleep(float(s))


def _make_accelerator(tcfg: dict):
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration, DistributedDataParallelKwargs

    # accelerate only goes multi-process on CPU (gloo) when told cpu=True; a torchrun launch
    # without CUDA must not silently become K independent single-process runs.
    distributed_cpu = not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1
    try:
        return Accelerator(
            cpu=distributed_cpu,
            mixed_precision=tcfg["mixed_precision"],
            gradient_accumulation_steps=tcfg["grad_accum"],
            dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=tcfg["seed"]),
            kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=tcfg["find_unused_parameters"])],
            step_scheduler_with_optimizer=False,
            rng_types=[],  # RNG states are ours to save/restore; accelerate must not re-sync them per epoch
        )
    except (ValueError, RuntimeError) as e:
        raise ConfigError(f"config key train.mixed_precision={tcfg['mixed_precision']!r} cannot be used here: "
                          f"{' '.join(str(e).split())}") from None


def train(run_cfg: dict, data_root, output_dir, resume: bool = False, max_steps: int | None = None,
          pretrained_svd=None, progress: bool = True, cache_only: bool = False) -> dict:
    """Train per ``run_cfg`` (a resolved run config) into ``output_dir``; returns the summary dict.

    ``resume`` continues from the newest complete checkpoint (a fresh start if there is none).
    ``max_steps`` overrides ``train.max_steps``. ``pretrained_svd`` (EgoPressDiff only) starts
    from a local SVD folder. The summary's ``exit_code`` is 0, or 128 + signal number when
    SIGINT/SIGTERM stopped the run (after saving a checkpoint). ``cache_only`` builds (or checks)
    the frozen-encoder cache and returns without training.
    """
    from accelerate.utils import send_to_device, set_seed
    from tqdm import tqdm

    from egopressdiff.runtime import configure_cpu_threads

    configure_cpu_threads()
    cfg = copy.deepcopy(run_cfg)
    tcfg = cfg["train"]
    if max_steps is not None:
        if max_steps <= 0:
            raise ConfigError(f"--max-steps must be > 0, got {max_steps}")
        tcfg["max_steps"] = int(max_steps)
    total_steps = tcfg["max_steps"]
    run = Path(output_dir)
    ckpt_root = run / "checkpoints"
    mtype = cfg["model"]["model_type"]
    if pretrained_svd is not None and mtype != "egopressdiff":
        raise ConfigError(f"--pretrained-svd only applies to model_type egopressdiff, not {mtype}")

    accelerator = _make_accelerator(tcfg)
    main = accelerator.is_main_process
    rank, world = accelerator.process_index, accelerator.num_processes
    log = (lambda msg: print(f"egopressdiff train: {msg}", file=sys.stderr)) if main else (lambda msg: None)
    t_start = time.time()

    try:
        # -- the checkpoint to resume from -------------------------------------------------
        resume_from = None
        if resume:
            if main:
                ckpt.clean_stale(ckpt_root)
            accelerator.wait_for_everyone()
            resume_from = ckpt.latest_checkpoint(ckpt_root)
            if resume_from is None:
                log(f"no complete checkpoint in {ckpt_root}: starting from scratch")
        loaded = ckpt.load_checkpoint(resume_from, rank) if resume_from is not None else None
        if loaded is not None and read_model_type(resume_from / "model") != mtype:
            raise CheckpointError(f"checkpoint {resume_from} holds a {read_model_type(resume_from / 'model')} "
                                  f"model but the config asks for model_type {mtype}")

        # -- model (same seed on every rank so frozen parts agree) ----------------------------
        set_seed(tcfg["seed"])
        if loaded is not None:
            model = load_model(resume_from / "model")
        elif pretrained_svd is not None:
            fields = {k: v for k, v in cfg["model"].items() if k not in ("model_type", "preset", "name")}
            model = model_class(mtype).from_svd(pretrained_svd, **fields)
        else:
            model = build_model(cfg["model"])
        trainable = list(model.trainable_parameters())
        if not trainable:
            raise ConfigError(f"model_type {mtype} has no trainable parameters")
        ids = {id(p) for p in trainable}
        for p in model.parameters():  # exactly the optimizer's parameters take gradients (and DDP syncs)
            p.requires_grad_(id(p) in ids)
        if tcfg["gradient_checkpointing"] and not _enable_gradient_checkpointing(model, ids):
            raise ConfigError(f"config key train.gradient_checkpointing: model_type {mtype} does not support it")
        if tcfg["allow_tf32"] and torch.cuda.is_available():
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True

        # -- data -----------------------------------------------------------------------
        data_opts = resolve_data_options(cfg, model.data_requirements())
        cfg["data"] = data_opts
        need_val = tcfg["val_every"] > 0 and tcfg["val_batches"] > 0
        train_ds, val_ds = build_datasets(data_opts, data_root, model, need_val)
        if tcfg["cache_encoders"] or cache_only:  # frozen-encoder cache (training/cache.py)
            train_ds, val_ds, cache_root = _use_encoder_cache(model, data_opts, train_ds, val_ds, tcfg, run,
                                                              accelerator, progress and main, log)
            if cache_only:
                return {"exit_code": 0, "cache": str(cache_root), "train_clips": len(train_ds),
                        "val_clips": len(val_ds) if val_ds is not None else 0}
        bs = tcfg["batch_size"]
        if len(train_ds) < bs * world:
            raise DataError(f"the training split has {len(train_ds)} clips, fewer than one batch "
                            f"({bs} x {world} processes); lower train.batch_size or add data",
                            path=data_root)
        loader_gen = torch.Generator().manual_seed(tcfg["seed"])  # keeps DataLoader draws off the global RNG
        train_dl = torch.utils.data.DataLoader(train_ds, batch_size=bs, shuffle=True, drop_last=True,
                                               num_workers=data_opts["num_workers"], generator=loader_gen,
                                               persistent_workers=False)

        # -- optimizer, schedule --------------------------------------------------------
        loss_module = LossModule(model)
        optimizer = torch.optim.AdamW(trainable, lr=tcfg["lr"], betas=(tcfg["adam_beta1"], tcfg["adam_beta2"]),
                                      eps=tcfg["adam_eps"], weight_decay=tcfg["weight_decay"])
        # Not prepared by accelerate: its wrapper steps the schedule once per process, which
        # would make the LR depend on the world size. We step it once per optimizer step.
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: lr_factor(s, tcfg["warmup_steps"], total_steps, tcfg["lr_schedule"]))
        if tcfg["compile"]:
            loss_module = torch.compile(loss_module)
        wrapped, optimizer, train_dl = accelerator.prepare(loss_module, optimizer, train_dl)
        ema = EMA(trainable, tcfg["ema"]) if tcfg["ema"] is not None else None

        # -- state ------------------------------------------------------------------------
        step, epoch, pos = 0, 0, 0
        history = {"last_losses": [], "val_losses": []}
        if loaded is not None:
            st = loaded["state"]
            step, epoch, pos = int(st["step"]), int(st["epoch"]), int(st["batch_in_epoch"])
            history["last_losses"] = list(st.get("last_losses", []))
            history["val_losses"] = list(st.get("val_losses", []))
            optimizer.load_state_dict(loaded["optimizer"])
            scheduler.load_state_dict(loaded["scheduler"])
            if loaded["scaler"] is not None and accelerator.scaler is not None:
                accelerator.scaler.load_state_dict(loaded["scaler"])
            if ema is not None and loaded["ema"] is not None:
                ema.load_state_dict(loaded["ema"])
            if st.get("world_size") != world or st.get("batch_size") != bs:
                log(f"resuming with {world} process(es) x batch {bs} (checkpoint: {st.get('world_size')} x "
                    f"{st.get('batch_size')}): the data order continues approximately, not exactly")
            if loaded["rng"] is not None:
                ckpt.restore_rng(loaded["rng"])  # last: nothing above may draw from it afterwards
            else:
                set_seed(tcfg["seed"] + rank + 1000003 * step)
            log(f"resumed from {resume_from} (step {step})")
            if main:  # RUN/model and the summary describe an earlier, shorter run: now stale
                shutil.rmtree(run / "model", ignore_errors=True)
                with contextlib.suppress(FileNotFoundError):
                    (run / "train_summary.json").unlink()
        else:
            set_seed(tcfg["seed"], device_specific=True)  # per-rank noise draws
        if main:
            save_run_config(cfg, run / "config.yaml")

        # -- validation (fixed seed: comparable across steps and runs) ---------------------
        val_loader = None
        if val_ds is not None and len(val_ds) > 0:
            n_val = min(len(val_ds), tcfg["val_batches"] * bs * world)
            shard = torch.utils.data.Subset(val_ds, list(range(rank, n_val, world)))
            val_loader = torch.utils.data.DataLoader(shard, batch_size=bs, shuffle=False,
                                                     num_workers=data_opts["num_workers"])

        def validate() -> float | None:
            if val_loader is None:
                return None
            snapshot = ckpt.capture_rng()
            torch.manual_seed(tcfg["val_seed"] + rank)
            random.seed(tcfg["val_seed"] + rank)
            np.random.seed(tcfg["val_seed"] + rank)
            model.eval()
            total = torch.zeros(2, device=accelerator.device)
            with torch.no_grad(), accelerator.autocast():
                for batch in val_loader:
                    batch = send_to_device(batch, accelerator.device)
                    total[0] += model.training_loss(batch).float()
                    total[1] += 1
            model.train()
            ckpt.restore_rng(snapshot)
            total = accelerator.reduce(total, "sum")
            return (total[0] / total[1].clamp_min(1)).item() if total[1] > 0 else None

        writer = None
        if main:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(run / "logs"), purge_step=step if loaded is not None else None)

        def save(tag: str) -> Path:
            e, p = (epoch + 1, 0) if pos >= len(train_dl) else (epoch, pos)
            train_state = {"epoch": e, "batch_in_epoch": p, "batch_size": bs, "grad_accum": tcfg["grad_accum"],
                           "seed": tcfg["seed"], "max_steps": total_steps, "saved_because": tag,
                           "last_losses": history["last_losses"][-20:], "val_losses": history["val_losses"]}
            scaler = accelerator.scaler.state_dict() if accelerator.scaler is not None else None
            return ckpt.save_checkpoint(
                ckpt_root, step, model=model,  # the module DDP wraps: same parameters
                optimizer_state=optimizer.state_dict(), scheduler_state=scheduler.state_dict(),
                scaler_state=scaler, ema_state=ema.state_dict() if ema is not None else None,
                train_state=train_state, rank=rank, world_size=world, barrier=accelerator.wait_for_everyone,
                keep=tcfg["keep_checkpoints"])

        # -- the loop -----------------------------------------------------------------------
        start_step = step
        last_ckpt_step = step if loaded is not None else None
        model.train()
        bar = tqdm(total=total_steps, initial=step, desc="train", unit="step", file=sys.stderr,
                   disable=not (main and progress), dynamic_ncols=True)
        loss_sum = torch.zeros((), device=accelerator.device)
        n_micro = 0
        t_seg, steps_seg = time.time(), 0
        stop_flag = torch.zeros(1, device=accelerator.device)
        with GracefulStop() as stopper:
            while step < total_steps and not stopper.requested:
                train_dl.set_epoch(epoch)
                if hasattr(train_ds, "set_epoch"):  # lets a dataset seed its augmentation by (epoch, index)
                    train_ds.set_epoch(epoch)
                it = accelerator.skip_first_batches(train_dl, pos) if pos > 0 else train_dl
                finished_epoch = True
                for batch in it:
                    with accelerator.accumulate(wrapped):
                        loss = wrapped(batch)
                        accelerator.backward(loss)
                        if accelerator.sync_gradients and tcfg["grad_clip"] is not None:
                            accelerator.clip_grad_norm_(trainable, tcfg["grad_clip"])
                        optimizer.step()
                        optimizer.zero_grad(set_to_none=True)
                    pos += 1
                    loss_sum += loss.detach().float()
                    n_micro += 1
                    if not accelerator.sync_gradients:
                        continue
                    # -- one optimizer step done --
                    if not accelerator.optimizer_step_was_skipped:
                        scheduler.step()
                    if ema is not None:
                        ema.update()
                    step += 1
                    steps_seg += 1
                    _test_step_sleep()
                    bar.update(1)
                    if step % tcfg["log_every"] == 0 or step == total_steps:
                        mean_loss = accelerator.reduce(loss_sum / n_micro, "mean").item()
                        if not math.isfinite(mean_loss):
                            raise DataError(f"training loss became {mean_loss} at step {step}; "
                                            "lower train.lr or check the data", path=data_root)
                        rate = steps_seg / max(1e-9, time.time() - t_seg)
                        history["last_losses"] = (history["last_losses"] + [[step, mean_loss]])[-20:]
                        bar.set_postfix(loss=f"{mean_loss:.4g}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
                        if writer is not None:
                            writer.add_scalar("train/loss", mean_loss, step)
                            writer.add_scalar("train/lr", scheduler.get_last_lr()[0], step)
                            writer.add_scalar("train/steps_per_s", rate, step)
                        t_seg, steps_seg = time.time(), 0
                    loss_sum.zero_()
                    n_micro = 0
                    if tcfg["val_every"] > 0 and (step % tcfg["val_every"] == 0 or step == total_steps):
                        vl = validate()
                        if vl is not None:
                            history["val_losses"].append([step, vl])
                            if writer is not None:
                                writer.add_scalar("val/loss", vl, step)
                    # every rank must agree to stop (a signal may reach only some of them)
                    stop_flag.fill_(1.0 if stopper.requested else 0.0)
                    if world > 1:
                        torch.distributed.all_reduce(stop_flag, op=torch.distributed.ReduceOp.MAX)
                    stop = bool(stop_flag.item())
                    if stop and stopper.signum is None:
                        stopper.signum = 15  # another rank got SIGTERM
                    if step % tcfg["checkpoint_every"] == 0 or stop or step == total_steps:
                        save("interrupted" if stop else "periodic")
                        last_ckpt_step = step
                    if stop or step >= total_steps:
                        finished_epoch = pos >= len(train_dl)
                        break
                if finished_epoch:
                    epoch, pos = epoch + 1, 0
        bar.close()
        if last_ckpt_step != step:
            save("final")

        # -- final model and summary -----------------------------------------------------------
        wall = time.time() - t_start
        exit_code = stopper.exit_code
        summary = {
            "steps": step,
            "start_step": start_step,
            "max_steps": total_steps,
            "epoch": epoch,
            "wall_time_s": round(wall, 3),
            "steps_per_s": round((step - start_step) / wall, 4) if wall > 0 else None,
            "last_losses": history["last_losses"],
            "val_losses": history["val_losses"],
            "interrupted": None if exit_code == 0 else ("SIGINT" if stopper.signum == 2 else "SIGTERM"),
            "exit_code": exit_code,
            "resumed_from": str(resume_from) if resume_from is not None else None,
            "world_size": world,
            "mixed_precision": tcfg["mixed_precision"],
            "ema": tcfg["ema"],
            "checkpoint": str(ckpt_root / ckpt.checkpoint_name(step)),
        }
        if main:
            with atomic_dir(run / "model", overwrite=True) as tmp:
                with ema.swapped_in() if ema is not None else contextlib.nullcontext():
                    model.save_pretrained(tmp)
            atomic_write_text(run / "train_summary.json", json.dumps(summary, indent=1))
            if writer is not None:
                writer.close()
            log(f"{'stopped' if exit_code else 'done'} at step {step}/{total_steps} in {wall:.1f} s; "
                f"model in {run / 'model'}")
        _test_dump_rank_weights(model, rank)
        accelerator.wait_for_everyone()
        return summary
    finally:
        _reset_accelerate_state()


def _test_dump_rank_weights(model: nn.Module, rank: int) -> None:
    # Test hook: EGOPRESSDIFF_TEST_RANK_WEIGHTS=<dir> makes every process write its own copy
    # of the weights, so a test can check that all DDP ranks ended identical.
    d = os.environ.get("EGOPRESSDIFF_TEST_RANK_WEIGHTS")
    if d:
        from safetensors.torch import save_file

        Path(d).mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
                  str(Path(d) / f"rank-{rank}.safetensors"))


def _enable_gradient_checkpointing(model: nn.Module, trainable_ids: set) -> bool:
    """The model's own switch, else that of its top-most sub-modules holding trainable weights."""
    if hasattr(model, "enable_gradient_checkpointing"):
        model.enable_gradient_checkpointing()
        return True
    found = False

    def visit(module):
        nonlocal found
        for child in module.children():
            if hasattr(child, "enable_gradient_checkpointing"):
                # not descending further: an outer wrapper's switch may do more than the inner one's
                if any(id(p) in trainable_ids for p in child.parameters()):
                    child.enable_gradient_checkpointing()
                    found = True
            else:
                visit(child)

    visit(model)
    return found


def _reset_accelerate_state() -> None:
    # accelerate keeps process-wide singletons (mixed precision, active dataloaders); reset
    # them so that a second train() in the same process (tests, notebooks) starts clean.
    with contextlib.suppress(Exception):
        from accelerate.state import AcceleratorState, GradientState

        GradientState._reset_state()
        AcceleratorState._reset_state(reset_partial_state=False)
