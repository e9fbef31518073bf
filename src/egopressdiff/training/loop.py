"""The training loop (accelerate): one code path for a laptop CPU, ``torchrun`` / ``accelerate launch``
on CPU (gloo) or GPUs, with mixed precision and gradient accumulation.

:class:`Trainer` does it in five steps: ``setup`` (accelerator, model, data, optimizer),
``resume`` (state of the newest checkpoint, or fresh seeds), then ``step`` per micro-batch
with ``validate`` and ``save`` on schedule; ``fit`` runs them in that order. :func:`train`
is the one-call form the CLI uses.

DDP correctness: the optimizer holds the trainable parameters of one module, and every
forward goes through the accelerate-*wrapped* :class:`LossModule` (whose ``forward`` is the
model's ``training_loss``), so DDP's gradient hooks fire and all ranks hold identical
weights after every step.

Exact resume: a checkpoint stores the model, optimizer, LR schedule, grad scaler, EMA, the
RNG states of every process and the position in the data stream (epoch + batches consumed).
The data order is a pure function of (seed, epoch) (accelerate's seedable sampler) and the
loader has its own generator, so on CPU with a fixed seed a run stopped and resumed gives
bit-identical weights to one that ran straight through -- provided the dataset's items are
a function of their index (true of ClipDataset without augmentation).

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
import random
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

from egopressdiff.config import resolve_data_options, save_run_config
from egopressdiff.errors import CheckpointError, ConfigError, DataError
from egopressdiff.fsutil import atomic_dir, atomic_write_text
from egopressdiff.training import checkpoint as ckpt
from egopressdiff.training.accel import (
    LossModule,
    enable_gradient_checkpointing,
    make_accelerator,
    reset_accelerate_state,
)
from egopressdiff.training.callbacks import TrainerCallback
from egopressdiff.training.datasets import build_datasets, use_encoder_cache
from egopressdiff.training.ema import EMA
from egopressdiff.training.registry import build_model, load_model, model_class, read_model_type
from egopressdiff.training.signals import GracefulStop


def lr_factor(step: int, warmup: int, total: int, schedule: str) -> float:
    """LR multiplier at optimizer step ``step``: linear warm-up, then constant / linear / cosine decay.

    Written out (a few lines) rather than taken from diffusers.optimization so that the
    baselines do not pay for importing diffusers.
    """
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    if schedule == "linear":
        return max(0.0, 1.0 - progress)
    return 0.5 * (1.0 + math.cos(math.pi * progress))  # cosine


class Trainer:
    """Train per ``run_cfg`` (a resolved run config) into the run folder ``output_dir``.

    ``resume`` continues from the newest complete checkpoint (a fresh start if there is none).
    ``max_steps`` overrides ``train.max_steps``. ``pretrained_svd`` (EgoPressDiff only) starts
    from a local SVD folder. ``callbacks`` are :class:`~egopressdiff.training.callbacks.TrainerCallback`
    objects. :meth:`fit` trains and returns the summary; :meth:`build_cache` only builds (or
    checks) the frozen-encoder cache.
    """

    def __init__(self, run_cfg: dict, data_root, output_dir, *, resume: bool = False, max_steps: int | None = None,
                 pretrained_svd=None, progress: bool = True, callbacks: list[TrainerCallback] | tuple = ()):
        self.cfg = copy.deepcopy(run_cfg)
        self.tcfg = self.cfg["train"]
        if max_steps is not None:
            if max_steps <= 0:
                raise ConfigError(f"--max-steps must be > 0, got {max_steps}")
            self.tcfg["max_steps"] = int(max_steps)
        self.total_steps = self.tcfg["max_steps"]
        self.model_type = self.cfg["model"]["model_type"]
        if pretrained_svd is not None and self.model_type != "egopressdiff":
            raise ConfigError(f"--pretrained-svd only applies to model_type egopressdiff, not {self.model_type}")
        self.data_root, self.pretrained_svd = data_root, pretrained_svd
        self.run = Path(output_dir)
        self.ckpt_root = self.run / "checkpoints"
        self.want_resume, self.progress = resume, progress
        self.callbacks = list(callbacks)
        # the position in training: what a checkpoint's state.json records
        self.global_step, self.epoch, self.batch_in_epoch = 0, 0, 0
        self.last_losses: list[list] = []
        self.val_losses: list[list] = []
        self.resume_from: Path | None = None
        self._loaded: dict | None = None  # the checkpoint's state, until resume() applied it

    # ------------------------------------------------------------------ the run, top to bottom
    def fit(self) -> dict:
        """setup, resume, then step until ``max_steps`` or SIGINT/SIGTERM; returns the summary.

        The summary's ``exit_code`` is 0, or 128 + signal number when a signal stopped the run
        (after saving a checkpoint).
        """
        t_start = time.time()
        try:
            self.setup()
            self.resume()
            self._open_run_folder()
            self._callback("on_train_begin")
            start_step = self.global_step
            with GracefulStop() as self.stopper:
                self.model.train()
                stop = False
                while self.global_step < self.total_steps and not stop:
                    stop = self._train_epoch()
            self._bar.close()
            if self._last_saved_step != self.global_step:
                self.save("final")
            return self._finish(start_step, time.time() - t_start)
        finally:
            reset_accelerate_state()

    def build_cache(self) -> dict:
        """Build (or check) the frozen-encoder cache of the run's datasets, and train nothing."""
        try:
            self._setup_process()
            self._open_checkpoint()
            self._setup_model()
            self._setup_data(cache_only=True)
            return {"exit_code": 0, "cache": str(self.cache_root), "train_clips": len(self.train_ds),
                    "val_clips": len(self.val_ds) if self.val_ds is not None else 0}
        finally:
            reset_accelerate_state()

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        """Accelerator, the checkpoint to resume from, model, datasets and loaders, optimizer and LR schedule."""
        self._setup_process()
        self._open_checkpoint()
        self._setup_model()
        self._setup_data()
        self._setup_optimization()

    def _setup_process(self) -> None:
        from egopressdiff.runtime import configure_cpu_threads

        configure_cpu_threads()
        self.accelerator = make_accelerator(self.tcfg)
        self.is_main = self.accelerator.is_main_process
        self.rank, self.world_size = self.accelerator.process_index, self.accelerator.num_processes

    def log(self, msg: str) -> None:
        """A progress line on stderr (main process only)."""
        if self.is_main:
            print(f"egopressdiff train: {msg}", file=sys.stderr)

    def _open_checkpoint(self) -> None:
        """Find and read the checkpoint to resume from (its weights are read in :meth:`_setup_model`)."""
        if not self.want_resume:
            return
        if self.is_main:
            ckpt.clean_stale(self.ckpt_root)
        self.accelerator.wait_for_everyone()
        self.resume_from = ckpt.latest_checkpoint(self.ckpt_root)
        if self.resume_from is None:
            self.log(f"no complete checkpoint in {self.ckpt_root}: starting from scratch")
            return
        self._loaded = ckpt.load_checkpoint(self.resume_from, self.rank)
        found = read_model_type(self.resume_from / "model")
        if found != self.model_type:
            raise CheckpointError(f"checkpoint {self.resume_from} holds a {found} model but the config asks "
                                  f"for model_type {self.model_type}")

    def _setup_model(self) -> None:
        from accelerate.utils import set_seed

        set_seed(self.tcfg["seed"])  # same seed on every rank, so that frozen parts agree
        if self._loaded is not None:
            model = load_model(self.resume_from / "model")
        elif self.pretrained_svd is not None:
            fields = {k: v for k, v in self.cfg["model"].items() if k not in ("model_type", "preset", "name")}
            model = model_class(self.model_type).from_svd(self.pretrained_svd, **fields)
        else:
            model = build_model(self.cfg["model"])
        self.trainable = list(model.trainable_parameters())
        if not self.trainable:
            raise ConfigError(f"model_type {self.model_type} has no trainable parameters")
        ids = {id(p) for p in self.trainable}
        for p in model.parameters():  # exactly the optimizer's parameters take gradients (and DDP syncs)
            p.requires_grad_(id(p) in ids)
        if self.tcfg["gradient_checkpointing"] and not enable_gradient_checkpointing(model, ids):
            raise ConfigError(f"config key train.gradient_checkpointing: model_type {self.model_type} "
                              "does not support it")
        if self.tcfg["allow_tf32"] and torch.cuda.is_available():
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.model = model

    def _setup_data(self, cache_only: bool = False) -> None:
        tcfg, world = self.tcfg, self.world_size
        data_opts = resolve_data_options(self.cfg, self.model.data_requirements())
        self.cfg["data"] = data_opts
        need_val = tcfg["val_every"] > 0 and tcfg["val_batches"] > 0
        self.train_ds, self.val_ds = build_datasets(data_opts, self.data_root, self.model, need_val)
        if tcfg["cache_encoders"] or cache_only:
            self.train_ds, self.val_ds, self.cache_root = use_encoder_cache(
                self.model, data_opts, self.train_ds, self.val_ds, tcfg, self.run, self.accelerator,
                self.progress and self.is_main, self.log)
        if cache_only:
            return
        bs = tcfg["batch_size"]
        if len(self.train_ds) < bs * world:
            raise DataError(f"the training split has {len(self.train_ds)} clips, fewer than one batch "
                            f"({bs} x {world} processes); lower train.batch_size or add data", path=self.data_root)
        loader_gen = torch.Generator().manual_seed(tcfg["seed"])  # keeps DataLoader draws off the global RNG
        self.train_dl = torch.utils.data.DataLoader(
            self.train_ds, batch_size=bs, shuffle=True, drop_last=True, num_workers=data_opts["num_workers"],
            generator=loader_gen, persistent_workers=False)
        # validation: this rank's share of the first val_batches batches, always the same clips
        self.val_loader = None
        if self.val_ds is not None and len(self.val_ds) > 0:
            n_val = min(len(self.val_ds), tcfg["val_batches"] * bs * world)
            shard = torch.utils.data.Subset(self.val_ds, list(range(self.rank, n_val, world)))
            self.val_loader = torch.utils.data.DataLoader(shard, batch_size=bs, shuffle=False,
                                                          num_workers=data_opts["num_workers"])

    def _setup_optimization(self) -> None:
        t = self.tcfg
        loss_module = LossModule(self.model)
        # fused kernels where torch has them (CPU and CUDA): one kernel per step instead of a loop over
        # the tensors (AdamW's step measured 5x faster on the tiny model on CPU: egopressdiff bench)
        fused = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in self.trainable) or None
        optimizer = torch.optim.AdamW(self.trainable, lr=t["lr"], betas=(t["adam_beta1"], t["adam_beta2"]),
                                      eps=t["adam_eps"], weight_decay=t["weight_decay"], fused=fused)
        # Not prepared by accelerate: its wrapper steps the schedule once per process, which
        # would make the LR depend on the world size. We step it once per optimizer step.
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: lr_factor(s, t["warmup_steps"], self.total_steps, t["lr_schedule"]))
        if t["compile"]:
            loss_module = torch.compile(loss_module)
        self.wrapped, self.optimizer, self.train_dl = self.accelerator.prepare(loss_module, optimizer, self.train_dl)
        self.ema = EMA(self.trainable, t["ema"]) if t["ema"] is not None else None

    # ------------------------------------------------------------------ resume
    def resume(self) -> None:
        """Restore the checkpoint found by :meth:`setup`: position, losses, optimizer, LR schedule,
        grad scaler, EMA and RNG states. Without one, seed every process for a fresh start."""
        from accelerate.utils import set_seed

        loaded, self._loaded = self._loaded, None
        if loaded is None:
            set_seed(self.tcfg["seed"], device_specific=True)  # per-rank noise draws
            return
        st = loaded["state"]
        self.global_step, self.epoch, self.batch_in_epoch = int(st["step"]), int(st["epoch"]), int(st["batch_in_epoch"])
        self.last_losses = list(st.get("last_losses", []))
        self.val_losses = list(st.get("val_losses", []))
        self.optimizer.load_state_dict(loaded["optimizer"])
        self.scheduler.load_state_dict(loaded["scheduler"])
        if loaded["scaler"] is not None and self.accelerator.scaler is not None:
            self.accelerator.scaler.load_state_dict(loaded["scaler"])
        if self.ema is not None and loaded["ema"] is not None:
            self.ema.load_state_dict(loaded["ema"])
        bs = self.tcfg["batch_size"]
        if st.get("world_size") != self.world_size or st.get("batch_size") != bs:
            self.log(f"resuming with {self.world_size} process(es) x batch {bs} (checkpoint: {st.get('world_size')} "
                     f"x {st.get('batch_size')}): the data order continues approximately, not exactly")
        if loaded["rng"] is not None:
            ckpt.restore_rng(loaded["rng"])  # last: nothing above may draw from it afterwards
        else:
            set_seed(self.tcfg["seed"] + self.rank + 1000003 * self.global_step)
        self.log(f"resumed from {self.resume_from} (step {self.global_step})")
        if self.is_main:  # RUN/model and the summary describe an earlier, shorter run: now stale
            shutil.rmtree(self.run / "model", ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                (self.run / "train_summary.json").unlink()

    def _open_run_folder(self) -> None:
        """config.yaml, the TensorBoard writer, the progress bar and the loss accumulators."""
        from tqdm import tqdm

        self.writer = None
        if self.is_main:
            save_run_config(self.cfg, self.run / "config.yaml")
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.run / "logs"),
                                        purge_step=self.global_step if self.resume_from is not None else None)
        self._bar = tqdm(total=self.total_steps, initial=self.global_step, desc="train", unit="step",
                         file=sys.stderr, disable=not (self.is_main and self.progress), dynamic_ncols=True)
        self._last_saved_step = self.global_step if self.resume_from is not None else None
        self._loss_sum = torch.zeros((), device=self.accelerator.device)
        self._n_micro = 0
        self._t_seg, self._steps_seg = time.time(), 0

    # ------------------------------------------------------------------ stepping
    def _train_epoch(self) -> bool:
        """Train through the rest of the current epoch (or up to max_steps); True when a signal stopped the run."""
        self.train_dl.set_epoch(self.epoch)
        if hasattr(self.train_ds, "set_epoch"):  # lets a dataset seed its augmentation by (epoch, index)
            self.train_ds.set_epoch(self.epoch)
        pos = self.batch_in_epoch
        batches = self.accelerator.skip_first_batches(self.train_dl, pos) if pos > 0 else self.train_dl
        stop, finished_epoch = False, True
        for batch in batches:
            if not self.step(batch):
                continue  # inside a gradient accumulation
            stop = self._after_step()
            if stop or self.global_step >= self.total_steps:
                finished_epoch = self.batch_in_epoch >= len(self.train_dl)
                break
        if finished_epoch:
            self.epoch, self.batch_in_epoch = self.epoch + 1, 0
        return stop

    def step(self, batch) -> bool:
        """One micro-batch through the wrapped module; True when it completed an optimizer step.

        At the end of an accumulation the gradients are clipped, the optimizer steps, then
        the LR schedule and the EMA.
        """
        acc = self.accelerator
        with acc.accumulate(self.wrapped):
            loss = self.wrapped(batch)
            acc.backward(loss)
            if acc.sync_gradients and self.tcfg["grad_clip"] is not None:
                acc.clip_grad_norm_(self.trainable, self.tcfg["grad_clip"])
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        self.batch_in_epoch += 1
        self._loss_sum += loss.detach().float()
        self._n_micro += 1
        if not acc.sync_gradients:
            return False
        if not acc.optimizer_step_was_skipped:  # fp16 overflow: the schedule waits too
            self.scheduler.step()
        if self.ema is not None:
            self.ema.update()
        self.global_step += 1
        self._steps_seg += 1
        return True

    def _after_step(self) -> bool:
        """Log, validate and checkpoint on schedule; True when every rank agreed to stop."""
        self._callback("on_step_end")
        self._bar.update(1)
        step, t = self.global_step, self.tcfg
        last = step == self.total_steps
        if step % t["log_every"] == 0 or last:
            self._log_train_loss()
        self._loss_sum.zero_()
        self._n_micro = 0
        if t["val_every"] > 0 and (step % t["val_every"] == 0 or last):
            val_loss = self.validate()
            if val_loss is not None:
                self.val_losses.append([step, val_loss])
                if self.writer is not None:
                    self.writer.add_scalar("val/loss", val_loss, step)
        stop = self._stop_agreed()
        if step % t["checkpoint_every"] == 0 or stop or last:
            self.save("interrupted" if stop else "periodic")
        return stop

    def _log_train_loss(self) -> None:
        step = self.global_step
        mean_loss = self.accelerator.reduce(self._loss_sum / self._n_micro, "mean").item()
        if not math.isfinite(mean_loss):
            raise DataError(f"training loss became {mean_loss} at step {step}; lower train.lr or check the data",
                            path=self.data_root)
        rate = self._steps_seg / max(1e-9, time.time() - self._t_seg)
        lr = self.scheduler.get_last_lr()[0]
        self.last_losses = (self.last_losses + [[step, mean_loss]])[-20:]
        self._bar.set_postfix(loss=f"{mean_loss:.4g}", lr=f"{lr:.2e}")
        if self.writer is not None:
            self.writer.add_scalar("train/loss", mean_loss, step)
            self.writer.add_scalar("train/lr", lr, step)
            self.writer.add_scalar("train/steps_per_s", rate, step)
        self._t_seg, self._steps_seg = time.time(), 0

    def _stop_agreed(self) -> bool:
        """Whether any rank got SIGINT/SIGTERM: every rank must stop at the same step."""
        flag = torch.tensor([1.0 if self.stopper.requested else 0.0], device=self.accelerator.device)
        if self.world_size > 1:
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        stop = bool(flag.item())
        if stop and self.stopper.signum is None:
            self.stopper.signum = 15  # another rank got SIGTERM
        return stop

    # ------------------------------------------------------------------ validate, save
    def validate(self) -> float | None:
        """Mean loss over the validation clips, with fixed noise seeds (comparable across steps and
        runs); the training RNG streams are left as they were. None without validation data."""
        from accelerate.utils import send_to_device

        if self.val_loader is None:
            return None
        acc, seed = self.accelerator, self.tcfg["val_seed"] + self.rank
        snapshot = ckpt.capture_rng()
        torch.manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed)
        self.model.eval()
        total = torch.zeros(2, device=acc.device)
        with torch.no_grad(), acc.autocast():
            for batch in self.val_loader:
                total[0] += self.model.training_loss(send_to_device(batch, acc.device)).float()
                total[1] += 1
        self.model.train()
        ckpt.restore_rng(snapshot)
        total = acc.reduce(total, "sum")
        return (total[0] / total[1].clamp_min(1)).item() if total[1] > 0 else None

    def save(self, reason: str) -> Path:
        """Checkpoint the current step (every process takes part); ``reason`` goes into state.json."""
        t = self.tcfg
        epoch, pos = self.epoch, self.batch_in_epoch
        if pos >= len(self.train_dl):  # the epoch is used up: resume at the start of the next one
            epoch, pos = epoch + 1, 0
        train_state = {"epoch": epoch, "batch_in_epoch": pos, "batch_size": t["batch_size"],
                       "grad_accum": t["grad_accum"], "seed": t["seed"], "max_steps": self.total_steps,
                       "saved_because": reason, "last_losses": self.last_losses[-20:],
                       "val_losses": self.val_losses}
        scaler = self.accelerator.scaler
        path = ckpt.save_checkpoint(
            self.ckpt_root, self.global_step, model=self.model,  # the module DDP wraps: same parameters
            optimizer_state=self.optimizer.state_dict(), scheduler_state=self.scheduler.state_dict(),
            scaler_state=scaler.state_dict() if scaler is not None else None,
            ema_state=self.ema.state_dict() if self.ema is not None else None,
            train_state=train_state, rank=self.rank, world_size=self.world_size,
            barrier=self.accelerator.wait_for_everyone, keep=t["keep_checkpoints"],
            before_complete=lambda folder: self._callback("on_checkpoint_written", folder))
        self._last_saved_step = self.global_step
        return path

    # ------------------------------------------------------------------ the end
    def _finish(self, start_step: int, wall: float) -> dict:
        """RUN/model (EMA weights if enabled) and train_summary.json; returns the summary."""
        exit_code = self.stopper.exit_code
        summary = {
            "steps": self.global_step,
            "start_step": start_step,
            "max_steps": self.total_steps,
            "epoch": self.epoch,
            "wall_time_s": round(wall, 3),
            "steps_per_s": round((self.global_step - start_step) / wall, 4) if wall > 0 else None,
            "last_losses": self.last_losses,
            "val_losses": self.val_losses,
            "interrupted": None if exit_code == 0 else ("SIGINT" if self.stopper.signum == 2 else "SIGTERM"),
            "exit_code": exit_code,
            "resumed_from": str(self.resume_from) if self.resume_from is not None else None,
            "world_size": self.world_size,
            "mixed_precision": self.tcfg["mixed_precision"],
            "ema": self.tcfg["ema"],
            "checkpoint": str(self.ckpt_root / ckpt.checkpoint_name(self.global_step)),
        }
        if self.is_main:
            with atomic_dir(self.run / "model", overwrite=True) as tmp:
                with self.ema.swapped_in() if self.ema is not None else contextlib.nullcontext():
                    self.model.save_pretrained(tmp)
            atomic_write_text(self.run / "train_summary.json", json.dumps(summary, indent=1))
            if self.writer is not None:
                self.writer.close()
            self.log(f"{'stopped' if exit_code else 'done'} at step {self.global_step}/{self.total_steps} in "
                     f"{wall:.1f} s; model in {self.run / 'model'}")
        self._callback("on_train_end", summary)
        self.accelerator.wait_for_everyone()
        return summary

    def _callback(self, hook: str, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)


def train(run_cfg: dict, data_root, output_dir, resume: bool = False, max_steps: int | None = None,
          pretrained_svd=None, progress: bool = True, cache_only: bool = False,
          callbacks: list[TrainerCallback] | tuple = ()) -> dict:
    """Train per ``run_cfg`` into ``output_dir`` and return the summary (see :class:`Trainer`);
    with ``cache_only``, build (or check) the frozen-encoder cache instead."""
    trainer = Trainer(run_cfg, data_root, output_dir, resume=resume, max_steps=max_steps,
                      pretrained_svd=pretrained_svd, progress=progress, callbacks=callbacks)
    return trainer.build_cache() if cache_only else trainer.fit()
