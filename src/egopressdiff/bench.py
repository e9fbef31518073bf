"""Performance figures of EgoPressDiff (the library behind ``egopressdiff bench``).

Every time is the median of ``repeats`` runs after one warm-up run. Peak memory is the
process's peak resident set (RSS) on CPU -- reset before each measurement through
``/proc/self/clear_refs`` where Linux allows it, otherwise a 5 ms RSS sampler -- and
``torch.cuda.max_memory_allocated`` on GPU. The model has random weights (``svd`` too: no
download), which does not change its cost.

JSON layout (see :func:`run_bench`): ``machine``, ``load_average`` {start, end}, ``config``,
``settings``, ``flops``, ``train``, ``train_cached``, ``train_profile``,
``optimizer_step_seconds``, ``sample`` {"4","8","25"}, ``window_breakdown``,
``predict_batched``, ``predict_speedup``, ``peak_tflops``, ``peak_source``, ``mfu``,
``conditioning_overhead_ratio``, ``posenet_share``, ``vertex_encoder_share``,
``data_pipeline_ratio``, ``clip_length_seconds`` {"8","16","32"},
``predict_memory_ratio_1024_vs_64``, ``cached_speedup``, ``targets`` and ``skipped`` (entry ->
reason, for what was not measured). Definitions:

* ``train``: one optimizer step (forward with the frozen encoders, backward, AdamW) on an
  in-memory batch of the config's batch size and clip length; ``clips_per_second`` = batch / s.
* ``sample``: ``EgoPressDiffPipeline.sample`` of one window of ``clip_length`` frames (B = 1) with k Euler
  steps: CLIP + conditions + k U-Net steps + decoding. ``frames_per_second`` = frames / s.
* ``flops``: FLOPs *counted* by ``torch.utils.flop_counter.FlopCounterMode`` (matmuls,
  convolutions, attention; 2 per multiply-add; elementwise work is not counted) on meta tensors,
  so the count costs no compute and is the same on every device: ``unet_forward`` (one
  denoiser forward = one Euler step of one window, B = 1), ``window_without_unet`` (the rest of
  one sampled window: CLIP, codec encode/decode, Vertex Encoder, PoseNet, UV encoder),
  ``window_stages`` (per stage), ``train`` / ``train_cached`` {forward, backward, total} (one
  training step of the config's batch, fwd + bwd, without recomputation from checkpointing).
* ``mfu``: achieved TFLOP/s = counted FLOPs / measured seconds, and MFU = achieved /
  ``peak_tflops``: ``sample`` {k: one window with k steps}, ``sample_unet_only`` (the U-Net's
  FLOPs over its own time in ``window_breakdown``), ``train``, ``train_cached``. The peak is
  ``--peak-tflops`` or, on a GPU the built-in table knows (H100 / H200 989, A100 312: dense bf16)
  and a bf16 run, the table's; otherwise MFU is null and ``skipped["mfu"]`` says why.
* ``window_breakdown``: where the time of one window goes -- ``pipe(...)`` on ``clip_length``
  in-memory frames of a synthetic recording (raw depth + its calibration, world-frame mesh,
  ego pose) at the model's default steps: ``unet`` (all its steps), ``codec_encode``,
  ``codec_decode`` (VAE or the tiny codec), ``clip`` (image encoder), ``other_encoders``
  (Vertex Encoder, PoseNet, UV encoder), ``data`` (the input processor: crops, depth
  registration, pose maps, UV unwrapping), ``host_overhead`` (the rest: input checks, noise,
  scheduler, blending, force integration) in seconds and shares of the whole, and ``calls`` per
  stage (the encoders run once per window, the U-Net once per step). GPU stages are synchronised.
* ``predict_batched``: whole-sequence ``pipe(...)`` on 100 in-memory frames (40 with
  ``--quick``), windows of ``clip_length`` with overlap 4, the model's default steps: ``eager``
  {batch size: seconds, frames_per_second, speedup vs batch size 1} for batch sizes 1, 2, 4, 8
  (one window per model call vs several; timed interleaved), ``compiled`` (``torch.compile`` of
  the U-Net -- inductor, CUDA graphs on GPU -- at batch size 1, the best eager one and 8, with
  ``first_call_seconds`` / ``compile_seconds``; not with ``--quick`` / ``--no-compile``),
  ``best`` and ``speedup`` (best / batch size 1 eager, = ``predict_speedup``).
* ``train_profile``: one training step split by timers -- ``forward_<stage>`` (the stages
  above), ``forward_other`` (loss, noise, resizing), ``backward``, ``optimizer``, ``zero_grad``
  -- and ``top_ops``, the operators with the most self time in one step under torch.profiler.
* ``optimizer_step_seconds``: AdamW's step over the trainable parameters with the for-loop,
  ``foreach`` and ``fused`` implementations.
* ``conditioning_overhead_ratio``: Vertex Encoder + PoseNet + conditioned U-Net (DC blocks)
  forward, versus the vanilla diffusers ``UNetSpatioTemporalConditionModel`` of the same config
  on the same input (B = 1, one window). ``..._per_sampling_step`` leaves out PoseNet and the
  Vertex Encoder, which sampling runs once per window, not once per step.
* ``data_pipeline_ratio``: ``ClipDataset`` clips/s through a DataLoader with the config's
  workers (synthetic data generated into a temporary folder) / ``train.clips_per_second``.
* ``cached_speedup``: a whole training step -- fetching the batch from the DataLoader (config
  workers) plus the optimizer step -- on ``ClipDataset`` versus on the frozen-encoder cache
  (training/cache.py). ``cached_speedup_model_only`` compares the optimizer step alone on
  in-memory batches (frozen encoders run vs read).
* ``predict_memory_ratio_1024_vs_64``: peak RSS of a child process streaming 1024 versus 64
  frames through ``predict_windows`` + ``PredictionWriter`` (inputs generated in memory).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

TARGETS = {
    "predict_speedup": (">=", 1.5),
    "conditioning_overhead_ratio": ("<=", 1.15),
    "data_pipeline_ratio": (">=", 3.0),
    "predict_memory_ratio_1024_vs_64": ("<=", 1.1),
    "cached_speedup": (">=", 2.0),
}
STAGES = ("unet", "codec_encode", "codec_decode", "clip", "other_encoders", "data")


# ---------------------------------------------------------------------------------------------- machine
def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_info(device: str = "cpu") -> dict:
    import torch

    from egopressdiff import __version__
    from egopressdiff.runtime import physical_cores

    info = {"cpu": _cpu_model(), "logical_cpus": os.cpu_count(), "physical_cores": physical_cores(),
            "torch_threads": torch.get_num_threads(), "platform": platform.platform(),
            "python": platform.python_version(), "device": device, "gpu": None}
    with contextlib.suppress(ImportError, OSError):
        import psutil

        info["memory_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    if device == "cuda" and torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        info["gpu"] = p.name
        info["gpu_memory_gb"] = round(p.total_memory / 2**30, 1)
        info["cuda"] = torch.version.cuda
    versions = {"egopressdiff": __version__, "torch": torch.__version__}
    for name in ("diffusers", "transformers", "accelerate", "numpy"):
        with contextlib.suppress(Exception):
            versions[name] = __import__(name).__version__
    info["versions"] = versions
    return info


def _load_average() -> list | None:
    """1/5/15-minute load averages: on a shared machine, how busy it was while measuring."""
    with contextlib.suppress(OSError, AttributeError):
        return [round(x, 2) for x in os.getloadavg()]
    return None


# ---------------------------------------------------------------------------------------------- timing, memory
def _sync(device) -> None:
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def median_time(fn, repeats: int, warmup: int = 1, device="cpu") -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(max(1, repeats)):
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _rss_mb() -> float:
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _hwm_mb() -> float | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


class PeakMemory:
    """Peak memory (MB) during the ``with`` block: RSS on CPU, max allocated on GPU."""

    def __init__(self, device="cpu"):
        self.device = str(device)
        self.peak_mb = None

    def __enter__(self):
        import torch

        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            return self
        self._hwm = False
        with contextlib.suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
            self._hwm = _hwm_mb() is not None
        if not self._hwm:  # fall back to sampling RSS
            self._stop = threading.Event()
            self._peak = _rss_mb()

            def sample():
                while not self._stop.wait(0.005):
                    self._peak = max(self._peak, _rss_mb())

            self._thread = threading.Thread(target=sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        import torch

        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            self.peak_mb = torch.cuda.max_memory_allocated() / 2**20
        elif self._hwm:
            self.peak_mb = _hwm_mb()
        else:
            self._stop.set()
            self._thread.join()
            self.peak_mb = max(self._peak, _rss_mb())
        return False


def _r(x, nd=4):
    return None if x is None else round(float(x), nd)


# ---------------------------------------------------------------------------------------------- pieces
def _autocast(device, enabled: bool):
    import torch

    if enabled and str(device).startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _to(batch: dict, device) -> dict:
    import torch

    return {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}


def _adamw(model):
    """AdamW as the trainer builds it (fused kernels where torch has them)."""
    import torch

    params = model.trainable_parameters()
    fused = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params) or None
    return torch.optim.AdamW(params, lr=1e-5, fused=fused)


def _train_step_fn(model, batch, device, amp: bool):

    opt = _adamw(model)
    return lambda: _step_on(model, batch, device, amp, opt)


def measure_train(model, batch, device, repeats: int, amp: bool) -> dict:
    model.train()
    step = _train_step_fn(model, batch, device, amp)
    step()  # warm-up outside the memory window: optimizer state allocated
    with PeakMemory(device) as mem:
        s = median_time(step, repeats, warmup=0, device=device)
    b = batch["vertices"].shape[0]
    return {"seconds_per_step": _r(s), "clips_per_second": _r(b / s), "peak_memory_mb": _r(mem.peak_mb, 1),
            "batch_size": b, "clip_length": int(batch["vertices"].shape[1])}


def measure_sample(model, batch, device, steps: int, repeats: int, amp: bool) -> dict:
    import torch

    from egopressdiff.pipelines import EgoPressDiffPipeline

    model.eval()
    pipe = EgoPressDiffPipeline(model).set_precision("bf16" if amp else "fp32")
    n = int(batch["vertices"].shape[1])

    def run():
        with torch.no_grad():
            pipe.sample(batch, num_inference_steps=steps, seed=0)

    run()
    with PeakMemory(device) as mem:
        s = median_time(run, repeats, warmup=0, device=device)
    return {"seconds_per_window": _r(s), "frames_per_second": _r(n / s, 3), "peak_memory_mb": _r(mem.peak_mb, 1),
            "frames": n, "steps": steps}


def measure_conditioning(model, batch, device, repeats: int, amp: bool) -> dict:
    """Ours (Vertex Encoder + PoseNet + conditioned U-Net) vs the vanilla SVD U-Net, interleaved."""
    import torch
    from diffusers import UNetSpatioTemporalConditionModel

    model.eval()
    vanilla = UNetSpatioTemporalConditionModel(**model.config.unet).to(device).eval()
    with torch.no_grad():
        prep = model.prepare_conditions(batch)
        b, n = prep["image_tokens"].shape[:2]
        h, w = model.latent_size
        g = torch.Generator().manual_seed(0)
        x = torch.randn(b, n, model.latent_channels, h, w, generator=g).to(device)
        inp = torch.cat([x, prep["cond_latents"].to(x.dtype)], dim=2)
        t = torch.full((b,), 0.25, device=device)
        tokens, tids = prep["image_tokens"], prep["added_time_ids"]
    den = model.denoiser
    c = model.config
    pose_in = batch.get("pose_map") if c.cond_space == "image" else batch.get("uv_cond")

    def vertex():
        return None if model.vertex_encoder is None else model.vertex_encoder.tokens(batch["vertices"])

    def pose():
        if model.posenet is None or pose_in is None:
            return None
        return model.posenet(pose_in.float().flatten(0, 1), latent_size=(h, w))

    def ours():
        den(inp, t, tokens, tids, vertex_tokens=vertex(), pose_features=pose(), vertex_uv=prep["vertex_uv"])

    def ours_unet():
        den(inp, t, tokens, tids, vertex_tokens=prep["vertex_tokens"], pose_features=prep["pose_features"],
            vertex_uv=prep["vertex_uv"])

    def plain():
        vanilla(inp, t, encoder_hidden_states=tokens[:, 0], added_time_ids=tids, return_dict=False)

    fns = {"ours": ours, "ours_unet": ours_unet, "vanilla": plain, "posenet": pose, "vertex_encoder": vertex}
    times = {k: [] for k in fns}
    with torch.no_grad(), _autocast(device, amp):
        for f in fns.values():  # warm-up
            f()
        for _ in range(max(1, repeats)):
            for k, f in fns.items():  # interleaved, so load changes hit all alike
                _sync(device)
                t0 = time.perf_counter()
                f()
                _sync(device)
                times[k].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"conditioning_overhead_ratio": _r(med["ours"] / med["vanilla"]),
            "conditioning_overhead_ratio_per_sampling_step": _r(med["ours_unet"] / med["vanilla"]),
            "posenet_share": _r(med["posenet"] / med["ours"]),
            "vertex_encoder_share": _r(med["vertex_encoder"] / med["ours"]),
            "forward_seconds": {k: _r(v, 5) for k, v in med.items()}}


def _loader(dataset, batch_size: int, workers: int):
    import torch

    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True,
                                       num_workers=workers, generator=torch.Generator().manual_seed(0),
                                       persistent_workers=False)


def measure_loader(dataset, batch_size: int, workers: int, batches: int) -> dict:
    """Clips/s of a shuffled DataLoader over ``dataset`` (first batch excluded: worker start-up)."""
    batches = max(1, min(batches, len(dataset) // batch_size - 1))
    it = iter(_loader(dataset, batch_size, workers))
    next(it)
    t = time.perf_counter()
    for _ in range(batches):
        next(it)
    dt = time.perf_counter() - t
    del it
    return {"clips_per_second": _r(batches * batch_size / dt, 3), "batches": batches, "workers": workers}


def measure_steps_from_loader(model, dataset, batch_size: int, workers: int, steps: int, device, amp: bool) -> float:
    """Seconds per whole training step (next batch + optimizer step), median over ``steps`` steps."""

    model.train()
    opt = _adamw(model)
    loader = _loader(dataset, batch_size, workers)
    times = []
    it = iter(loader)
    for k in range(steps + 1):
        t = time.perf_counter()
        try:
            batch = next(it)
        except StopIteration:
            it = iter(loader)
            batch = next(it)
        _step_on(model, _to(batch, device), device, amp, opt)
        _sync(device)
        if k > 0:  # the first step pays for worker start-up and allocations
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def _step_on(model, batch, device, amp, opt) -> None:
    opt.zero_grad(set_to_none=True)
    with _autocast(device, amp):
        loss = model.training_loss(batch)
    loss.backward()
    opt.step()


def predict_memory_child(config: str, frames: int, steps: int, threads: int, window: int) -> dict:
    """Run in a child process: stream ``frames`` frames through predict_windows + PredictionWriter."""
    import resource

    import torch

    from egopressdiff.evaluation.predictions import PredictionWriter
    from egopressdiff.models import EgoPressDiff
    from egopressdiff.models.testing import make_dummy_batch
    from egopressdiff.pipelines import EgoPressDiffPipeline
    from egopressdiff.pipelines.windows import predict_windows

    torch.set_num_threads(max(1, threads))
    torch.manual_seed(0)
    model = EgoPressDiff.from_config(config, clip_length=window).eval()
    pipe = EgoPressDiffPipeline(model)
    crop = model.config.crop_size

    def load_window(start, stop):
        return make_dummy_batch(1, stop - start, crop_size=crop, seed=start)

    with torch.no_grad():  # warm-up: allocator and kernels, before the baseline is taken
        pipe.sample(load_window(0, min(window, frames)), num_inference_steps=steps, seed=0)
    base = _rss_mb()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="egopressdiff-bench-") as out, PeakMemory("cpu") as mem:
        # the peak is taken from here on: model building and imports do not hide the prediction's own
        with PredictionWriter(out, "p_000", "bench", list(range(1, frames + 1))) as writer, torch.no_grad():
            for idx, mean, _std in predict_windows(pipe, frames, load_window, window=window, overlap=4,
                                                   steps=steps, seed=0):
                writer.put(idx, mean)
    return {"frames": frames, "peak_rss_mb": round(mem.peak_mb, 1), "rss_before_predict_mb": round(base, 1),
            "process_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "seconds": round(time.perf_counter() - t0, 3)}


def measure_predict_memory(config: str, lengths=(64, 1024), steps: int = 1, window: int = 16) -> dict:
    import torch

    out = {}
    for n in lengths:
        code = ("import json, sys; from egopressdiff.bench import predict_memory_child as f; "
                f"print('@@' + json.dumps(f({config!r}, {int(n)}, {int(steps)}, {torch.get_num_threads()}, "
                f"{int(window)})))")
        env = dict(os.environ)
        src = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise RuntimeError(f"predict-memory child ({n} frames) failed: {proc.stderr.strip()[-2000:]}")
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("@@")][-1]
        out[str(n)] = json.loads(line[2:])
    a, b = out[str(lengths[0])], out[str(lengths[-1])]
    return {"runs": out, "ratio": _r(b["peak_rss_mb"] / a["peak_rss_mb"]),
            "growth_mb": _r((b["peak_rss_mb"] - b["rss_before_predict_mb"])
                            - (a["peak_rss_mb"] - a["rss_before_predict_mb"]), 1)}


# ---------------------------------------------------------------------------------------------- stages
class StageMeter:
    """Wall time, calls and (with ``counter``, a FlopCounterMode) counted FLOPs per stage of a model call.

    Wraps the entry points of an EgoPressDiff model's parts for the duration of the ``with``
    block: ``unet`` (the conditioned U-Net's forward), ``codec_encode`` / ``codec_decode``,
    ``clip`` (the image encoder), ``other_encoders`` (Vertex Encoder, PoseNet, UV condition
    encoder) and, given a pipeline, ``data`` (its input processor). Only the outermost stage of a
    nested call counts. On GPU each stage is synchronised before and after, so its time is its own.
    """

    def __init__(self, model, device=None, pipeline=None, counter=None):
        self.model, self.pipeline, self.counter = model, pipeline, counter
        self.device = str(device)
        self.seconds = {s: 0.0 for s in STAGES}
        self.calls = {s: 0 for s in STAGES}
        self.flops = {s: 0 for s in STAGES}
        self._depth = 0
        self._restore: list = []

    def _entry_points(self):
        m = self.model
        yield m.denoiser, "forward", "unet"
        yield m.codec, "encode", "codec_encode"
        yield m.codec, "decode", "codec_decode"
        yield m.image_encoder, "forward", "clip"
        for part in (m.vertex_encoder, m.posenet, m.uv_encoder):
            if part is not None:
                yield part, "forward", "other_encoders"
        if self.pipeline is not None:
            yield self.pipeline, "processor", "data"

    def _timed(self, fn, stage):
        def run(*args, **kwargs):
            if self._depth:
                return fn(*args, **kwargs)
            self._depth += 1
            _sync(self.device)
            f0 = self.counter.get_total_flops() if self.counter is not None else 0
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                _sync(self.device)
                self.seconds[stage] += time.perf_counter() - t0
                self.calls[stage] += 1
                if self.counter is not None:
                    self.flops[stage] += self.counter.get_total_flops() - f0
                self._depth -= 1

        return run

    def __enter__(self):
        for obj, attr, stage in self._entry_points():
            had_own = attr in vars(obj)  # an instance attribute (the processor) vs a class method
            self._restore.append((obj, attr, had_own, getattr(obj, attr)))
            setattr(obj, attr, self._timed(getattr(obj, attr), stage))
        return self

    def __exit__(self, *exc):
        for obj, attr, had_own, old in reversed(self._restore):
            if had_own:
                setattr(obj, attr, old)
            else:
                delattr(obj, attr)
        self._restore.clear()
        return False


def _flop_counter():
    from torch.utils.flop_counter import FlopCounterMode

    return FlopCounterMode(display=False)


def count_flops(config: str, batch_size: int, clip_length: int | None = None) -> dict:
    """FLOPs counted by torch's ``FlopCounterMode`` on meta tensors (shapes only: no compute, no memory).

    Counted: matmuls, convolutions and attention (2 FLOPs per multiply-add); elementwise ops,
    norms and softmax are not (they are not model FLOPs). Training counts one forward + backward
    of the config's batch without gradient checkpointing (recomputation is not model work).
    """
    import torch

    from egopressdiff.models import EgoPressDiff
    from egopressdiff.models.testing import make_dummy_batch
    from egopressdiff.pipelines import EgoPressDiffPipeline

    # .to("meta"): a few diffusers tensors are built on the CPU whatever the default device
    over = {} if clip_length is None else {"clip_length": clip_length}
    model = EgoPressDiff.from_config(config, device="meta", **over).to("meta")
    c = model.config
    n = c.clip_length
    uvc = c.uv_cond_size if c.cond_space == "uv" else None
    one = _to(make_dummy_batch(1, n, crop_size=c.crop_size, uv_cond_size=uvc), "meta")
    pipe = EgoPressDiffPipeline(model.eval())
    with torch.no_grad(), _flop_counter() as fc, StageMeter(model, "meta", counter=fc) as st:
        pipe.sample(one, num_inference_steps=1, seed=0)
    unet = st.flops["unet"] // max(1, st.calls["unet"])
    window_fixed = fc.get_total_flops() - st.flops["unet"]
    model.train()
    batch = _to(make_dummy_batch(batch_size, n, crop_size=c.crop_size, uv_cond_size=uvc), "meta")
    train = {}
    for name, b in (("train", batch), ("train_cached", None)):
        if b is None:  # the frozen encoders' outputs read from the cache instead of computed
            with torch.no_grad():
                b = {**batch, **model.encode_conditions(batch), **model.encode_targets(batch)}
            for k in ("rgb", "depth", "pressure", "depth_valid"):
                b.pop(k, None)
        with _flop_counter() as fwd:
            loss = model.training_loss(b)
        with _flop_counter() as bwd:
            loss.backward()
        train[name] = {"forward": fwd.get_total_flops(), "backward": bwd.get_total_flops(),
                       "total": fwd.get_total_flops() + bwd.get_total_flops(), "batch_size": batch_size,
                       "clip_length": n}
        model.zero_grad(set_to_none=True)
    return {"unet_forward": unet, "window_without_unet": window_fixed,
            "window_stages": {k: v for k, v in st.flops.items() if v}, "frames": n, **train,
            "sampler": c.edm["sampler"], "counted_on": "meta tensors (torch.utils.flop_counter.FlopCounterMode)"}


def unet_calls(steps: int, sampler: str) -> int:
    """Denoiser forwards of one sample: Euler one per step, Heun two except on the last step."""
    return steps if sampler == "euler" else 2 * steps - 1


# ---------------------------------------------------------------------------------------------- MFU
# Dense bf16 tensor-core peaks (TFLOP/s) from the vendors' data sheets, matched on the device name.
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0}


def peak_tflops_for(machine: dict, mixed_precision: str, given: float | None) -> tuple[float | None, str]:
    """(peak TFLOP/s, where it came from) -- or (None, why none is known)."""
    if given is not None:
        return float(given), "--peak-tflops"
    gpu = machine.get("gpu")
    if not gpu:
        return None, "no peak FLOP/s is known for a CPU; give --peak-tflops to get MFU"
    for name, peak in PEAK_BF16_TFLOPS.items():
        if name.lower() in gpu.lower():
            if mixed_precision != "bf16":
                return None, (f"{gpu}: the built-in peaks are bf16 dense and this run computed in "
                              f"{mixed_precision}; give --peak-tflops")
            return peak, f"{name} bf16 dense (built-in table)"
    return None, f"no built-in peak for {gpu!r}; give --peak-tflops"


def _rate(flops, seconds, peak):
    if not flops or not seconds:
        return None, None
    tflops = flops / seconds / 1e12
    return _r(tflops, 4), (None if peak is None else _r(tflops / peak, 5))


def model_flop_utilisation(res: dict, flops: dict, peak: float | None) -> dict:
    """Achieved TFLOP/s and MFU (= achieved / peak) of sampling and training from counted FLOPs."""
    out = {"sample": {}, "train": None, "train_cached": None}
    sampler = flops["sampler"]
    for k, s in (res.get("sample") or {}).items():
        if not s:
            continue
        f = flops["window_without_unet"] + unet_calls(int(k), sampler) * flops["unet_forward"]
        tf, mfu = _rate(f, s["seconds_per_window"], peak)
        out["sample"][k] = {"flops_per_window": f, "tflops_per_second": tf, "mfu": mfu}
    br = res.get("window_breakdown")
    if br:  # the U-Net alone, at the default steps
        f = unet_calls(br["steps"], sampler) * flops["unet_forward"]
        tf, mfu = _rate(f, br["seconds"]["unet"], peak)
        out["sample_unet_only"] = {"steps": br["steps"], "flops": f, "tflops_per_second": tf, "mfu": mfu}
    for name in ("train", "train_cached"):
        t = res.get(name)
        if t:
            f = flops[name]["total"]
            tf, mfu = _rate(f, t["seconds_per_step"], peak)
            out[name] = {"flops_per_step": f, "tflops_per_second": tf, "mfu": mfu}
    return out


# ---------------------------------------------------------------------------------------------- in-memory frames
def in_memory_recording(folder, frames: int) -> dict:
    """``frames`` annotated frames of one synthetic sequence, as a user holds them in memory:
    the keyword arguments of ``pipe(...)`` (colour, raw depth + its calibration, world-frame mesh + ego pose)."""
    import numpy as np

    from egopressdiff.data.reader import EgoPressureReader
    from egopressdiff.data.synth import generate_dataset

    root = Path(folder) / "recording"
    # pre- and post-contact frames carry no annotation: generate a margin
    generate_dataset(root, participants=1, sequences=1, frames=frames + 40, seed=0, progress=False)
    r = EgoPressureReader(root)
    p = r.participants()[0]
    s = r.sequences(p)[0]
    ids = [int(f) for f in r.predictable_frames(p, s)][:frames]
    if len(ids) < frames:
        raise RuntimeError(f"synthetic recording has only {len(ids)} annotated frames, {frames} needed")
    anns = [r.load_annotation(p, s, f) for f in ids]
    return {"rgb": np.stack([r.load_rgb(p, s, f) for f in ids]),
            "depth": np.stack([r.load_depth_raw(p, s, f) for f in ids]),
            "vertices": np.stack([a.vertices for a in anns]), "joints": np.stack([a.joints for a in anns]),
            "ego_R": np.stack([a.ego_R for a in anns]), "ego_T": np.stack([a.ego_T for a in anns]),
            "intrinsics": r.intrinsics(p, s), "depth_calibration": r.depth_calibration(p, s)}


def _first(recording: dict, n: int) -> dict:
    return {k: (v[:n] if k in _PER_FRAME else v) for k, v in recording.items()}


_PER_FRAME = ("rgb", "depth", "vertices", "joints", "ego_R", "ego_T")


def measure_window_breakdown(pipe, recording: dict, steps: int, device, repeats: int) -> dict:
    """Where the time of one sampled window goes: ``pipe(...)`` on one window of in-memory frames."""
    n = pipe.clip_length
    args = _first(recording, n)

    def call():
        return pipe(**args, num_inference_steps=steps, seed=0, batch_size=1)

    call()  # warm-up
    runs = []
    for _ in range(max(1, repeats)):
        with StageMeter(pipe.model, device, pipeline=pipe) as st:
            _sync(device)
            t0 = time.perf_counter()
            call()
            _sync(device)
            total = time.perf_counter() - t0
        runs.append((total, dict(st.seconds), dict(st.calls)))
    total, seconds, calls = sorted(runs, key=lambda r: r[0])[len(runs) // 2]  # the median run, whole
    seconds["host_overhead"] = total - sum(seconds.values())
    return {"frames": n, "steps": steps, "seconds_total": _r(total),
            "seconds": {k: _r(v, 5) for k, v in seconds.items()},
            "share": {k: _r(v / total) for k, v in seconds.items()}, "calls": calls}


def measure_predict_batched(model, recording: dict, steps: int, batch_sizes, device, repeats: int,
                            precision: str, compile_backend: str | None, window: int, overlap: int = 4) -> dict:
    """Whole-sequence ``pipe(...)`` throughput, one window per model call vs several, eager and compiled.

    The eager variants are timed interleaved (so load changes hit all alike): median of
    ``repeats`` after one warm-up each. The compiled variants (``torch.compile`` of the U-Net, on a
    copy of the model, at batch size 1, the fastest eager one and the largest; static shapes)
    are timed interleaved with eager batch size 1, their speed-up reference, and report their
    first call (which compiles; fast when inductor's on-disk cache already holds the graph).
    """
    import copy

    from egopressdiff.pipelines import EgoPressDiffPipeline

    frames = len(recording["rgb"])
    pipe = EgoPressDiffPipeline(model).set_precision(precision)

    def run(p, k):
        p(**recording, num_inference_steps=steps, seed=0, window=window, overlap=overlap, batch_size=k)

    times = {k: [] for k in batch_sizes}
    for k in batch_sizes:
        run(pipe, k)
    for _ in range(max(1, repeats)):
        for k in batch_sizes:
            _sync(device)
            t0 = time.perf_counter()
            run(pipe, k)
            _sync(device)
            times[k].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    eager = {str(k): {"seconds": _r(s), "frames_per_second": _r(frames / s, 3), "speedup": _r(med[1] / s, 3)}
             for k, s in med.items()}
    best_k = min(med, key=med.get)
    out = {"frames": frames, "window": window, "overlap": overlap, "steps": steps, "precision": precision,
           "eager": eager, "best_eager_batch_size": best_k}
    best = ("eager", best_k, med[best_k], med[1] / med[best_k])  # (variant, batch size, seconds, speed-up)
    if compile_backend:
        compiled = {}
        for k in sorted({1, best_k, max(batch_sizes)}):
            cpipe = EgoPressDiffPipeline(copy.deepcopy(model)).set_precision(precision)
            cpipe.compile(backend=compile_backend, dynamic=False)
            _sync(device)
            t0 = time.perf_counter()
            run(cpipe, k)  # compiles
            _sync(device)
            first = time.perf_counter() - t0
            ts, ref = [], []
            for _ in range(max(1, repeats)):  # interleaved with the eager batch-size-1 reference
                for p, kk, acc in ((pipe, 1, ref), (cpipe, k, ts)):
                    _sync(device)
                    t0 = time.perf_counter()
                    run(p, kk)
                    _sync(device)
                    acc.append(time.perf_counter() - t0)
            s, speedup = statistics.median(ts), statistics.median(ref) / statistics.median(ts)
            compiled[str(k)] = {"seconds": _r(s), "frames_per_second": _r(frames / s, 3),
                                "speedup": _r(speedup, 3), "eager_batch_1_seconds": _r(statistics.median(ref)),
                                "first_call_seconds": _r(first, 2), "compile_seconds": _r(first - s, 2)}
            if speedup > best[3]:
                best = ("compiled", k, s, speedup)
            del cpipe
        out["compiled"] = compiled
        out["compile"] = {"backend": compile_backend, "mode": "reduce-overhead" if str(device).startswith("cuda")
                          and compile_backend == "inductor" else "default", "dynamic": False}
    out["best"] = {"variant": best[0], "batch_size": best[1], "frames_per_second": _r(frames / best[2], 3)}
    out["speedup"] = _r(best[3], 3)
    out["batched_speedup"] = _r(med[1] / med[best_k], 3)
    return out


# ---------------------------------------------------------------------------------------------- training profile
def profile_train_step(model, batch, device, amp: bool, repeats: int, top: int = 12) -> dict:
    """Where one optimizer step goes: per-stage timers over ``repeats`` steps (medians), then one
    step under torch.profiler for the operators that take the most time."""
    from torch.profiler import ProfilerActivity, profile

    model.train()
    opt = _adamw(model)
    gpu = str(device).startswith("cuda")

    def step(meter=None):
        laps = {}

        def lap(name, t0):
            _sync(device)
            laps[name] = time.perf_counter() - t0

        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        lap("zero_grad", t0)
        t0 = time.perf_counter()
        with _autocast(device, amp):
            loss = model.training_loss(batch)
        lap("forward", t0)
        t0 = time.perf_counter()
        loss.backward()
        lap("backward", t0)
        t0 = time.perf_counter()
        opt.step()
        lap("optimizer", t0)
        return laps

    step()  # warm-up: optimizer state
    runs = []
    for _ in range(max(1, repeats)):
        with StageMeter(model, device) as st:
            laps = step()
        fwd_parts = {k: v for k, v in st.seconds.items() if k != "data"}
        laps["forward_other"] = laps["forward"] - sum(fwd_parts.values())  # loss, noise, resizing, glue
        runs.append({**{f"forward_{k}": v for k, v in fwd_parts.items()}, **laps})
    keys = [k for k in runs[0] if k != "forward"]
    seconds = {k: statistics.median(r[k] for r in runs) for k in keys}
    total = statistics.median(sum(r[k] for k in keys) for r in runs)
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if gpu else [])
    with profile(activities=acts) as prof:
        step()
    attr = "self_device_time_total" if gpu else "self_cpu_time_total"
    ev = [e for e in prof.key_averages() if getattr(e, attr, 0) > 0]
    ev.sort(key=lambda e: getattr(e, attr), reverse=True)
    all_us = sum(getattr(e, attr) for e in ev) or 1.0
    ops = [{"op": e.key, "self_seconds": _r(getattr(e, attr) / 1e6, 5), "share": _r(getattr(e, attr) / all_us),
            "calls": int(e.count)} for e in ev[:top]]
    return {"seconds_per_step": _r(total), "seconds": {k: _r(v, 5) for k, v in seconds.items()},
            "share": {k: _r(v / total) for k, v in seconds.items()},
            "top_ops": ops, "top_ops_time": "self device time" if gpu else "self CPU time"}


def measure_optimizers(model, batch, device, amp: bool, repeats: int) -> dict:
    """AdamW's step over the trainable parameters: for-loop vs foreach vs fused kernels (where torch has them)."""
    import torch

    model.train()
    params = model.trainable_parameters()
    model.zero_grad(set_to_none=True)
    with _autocast(device, amp):
        model.training_loss(batch).backward()
    out = {}
    for name, kw in (("for_loop", {"foreach": False}), ("foreach", {"foreach": True}), ("fused", {"fused": True})):
        try:
            opt = torch.optim.AdamW(params, lr=1e-12, **kw)  # tiny lr: the weights barely move
            out[name] = _r(median_time(opt.step, max(3, repeats), warmup=1, device=device), 6)
        except (RuntimeError, ValueError) as e:
            out[name] = None
            out[f"{name}_error"] = " ".join(str(e).split())[:200]
    model.zero_grad(set_to_none=True)
    return out


# ---------------------------------------------------------------------------------------------- the bench
def run_bench(config: str = "tiny", device: str = "cpu", quick: bool = False, repeats: int | None = None,
              log=None, peak_tflops: float | None = None, compile: bool | None = None) -> dict:
    """Measure everything (see module doc); returns the JSON-ready result.

    ``peak_tflops``: the device's peak for MFU (default: the built-in table for known GPUs);
    ``compile``: also time ``torch.compile`` in ``predict_batched`` (default: unless ``quick``).
    """
    import torch

    from egopressdiff.config import load_run_config
    from egopressdiff.errors import ConfigError
    from egopressdiff.models import EgoPressDiff
    from egopressdiff.models.testing import make_dummy_batch
    from egopressdiff.runtime import configure_cpu_threads

    user_log = log or (lambda msg: None)
    sections: dict[str, float] = {}
    last = [None, time.perf_counter()]

    def log(msg: str) -> None:  # also times the sections (each log line starts one)
        now = time.perf_counter()
        if last[0] is not None:
            sections[last[0]] = round(now - last[1], 2)
        last[0], last[1] = msg.rstrip(". "), now
        user_log(msg)

    if config not in ("tiny", "svd"):
        raise ConfigError(f"--config must be tiny or svd, got {config!r}")
    if device not in ("cpu", "cuda"):
        raise ConfigError(f"--device must be cpu or cuda, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available (torch.cuda.is_available() is false)")
    if peak_tflops is not None and not peak_tflops > 0:
        raise ConfigError(f"--peak-tflops must be > 0, got {peak_tflops!r}")
    compile = (not quick) if compile is None else bool(compile)
    configure_cpu_threads()
    run_cfg = load_run_config(config)
    tcfg, dcfg = run_cfg["train"], run_cfg["data"]
    repeats = repeats if repeats is not None else (1 if quick else 5)
    gpu = device == "cuda"
    amp = gpu and tcfg["mixed_precision"] == "bf16"
    big_on_cpu = config == "svd" and not gpu
    skipped: dict[str, str] = {}
    t_all = time.perf_counter()

    torch.manual_seed(0)
    log(f"building the {config} model (random weights) ...")
    model = EgoPressDiff.from_config(config).to(device)
    if gpu and tcfg["gradient_checkpointing"]:
        model.denoiser.enable_gradient_checkpointing()
    c = model.config
    bs, n = tcfg["batch_size"], c.clip_length
    uvc = c.uv_cond_size if c.cond_space == "uv" else None
    batch = _to(make_dummy_batch(bs, n, crop_size=c.crop_size, uv_cond_size=uvc), device)
    one = _to(make_dummy_batch(1, n, crop_size=c.crop_size, uv_cond_size=uvc, seed=1), device)
    res: dict = {
        "machine": machine_info(device),
        "load_average": {"start": _load_average()},
        "config": config,
        "settings": {"quick": quick, "repeats": repeats, "warmup": 1, "batch_size": bs, "clip_length": n,
                     "crop_size": c.crop_size, "uv_size": c.uv_size, "latent": [model.latent_channels,
                                                                                *model.latent_size],
                     "mixed_precision": "bf16 autocast" if amp else "fp32",
                     "gradient_checkpointing": bool(gpu and tcfg["gradient_checkpointing"]),
                     "attention": "torch scaled_dot_product_attention (diffusers AttnProcessor2_0)",
                     "num_workers": dcfg["num_workers"], "sampler": c.edm["sampler"]},
        "parameters": {k: v for k, v in model.parameter_counts().items()},
    }

    # -- counted FLOPs (meta tensors: the same on every device) ----------------------------------
    log("counting FLOPs (FlopCounterMode on meta tensors) ...")
    flops = count_flops(config, bs)
    res["flops"] = flops

    # -- training ---------------------------------------------------------------------------
    train_cps = None
    if big_on_cpu:
        skipped["train"] = "svd training step on CPU does not fit in a few minutes (run with --device cuda)"
        res["train"] = None
    else:
        log("training step ...")
        res["train"] = measure_train(model, batch, device, repeats, amp)
        train_cps = res["train"]["clips_per_second"]
        with torch.no_grad():
            cached = {**batch, **model.encode_conditions(batch), **model.encode_targets(batch)}
        for k in ("rgb", "depth", "pressure", "depth_valid"):
            cached.pop(k, None)
        res["train_cached"] = measure_train(model, cached, device, repeats, amp)
        res["cached_speedup_model_only"] = _r(res["train"]["seconds_per_step"]
                                              / res["train_cached"]["seconds_per_step"], 3)
        del cached
        log("training step profile ...")
        res["train_profile"] = profile_train_step(model, batch, device, amp, repeats)
        res["optimizer_step_seconds"] = measure_optimizers(model, batch, device, amp, repeats)

    # -- sampling ---------------------------------------------------------------------------
    res["sample"] = {}
    for k in (4, 8, 25):
        if big_on_cpu and k != 4:
            skipped[f"sample.{k}"] = "svd on CPU: only 4 steps fit in a few minutes"
            res["sample"][str(k)] = None
            continue
        log(f"sampling, {k} steps ...")
        res["sample"][str(k)] = measure_sample(model, one, device, k, 1 if big_on_cpu else repeats, amp)

    # -- conditioning cost ------------------------------------------------------------------------
    log("conditioning overhead vs the vanilla U-Net ...")
    res.update(measure_conditioning(model, one, device, 1 if (big_on_cpu or quick) else max(3, repeats), amp))

    # -- clip length --------------------------------------------------------------------------
    if big_on_cpu:
        skipped["clip_length_seconds"] = "svd on CPU: too slow"
        res["clip_length_seconds"] = None
    else:
        log("clip length scaling ...")
        res["clip_length_seconds"] = {}
        cl_steps = 1 if quick else c.sample_steps
        for length in (8, 16, 32):
            b1 = _to(make_dummy_batch(1, length, crop_size=c.crop_size, uv_cond_size=uvc, seed=2), device)
            m = measure_sample(model, b1, device, cl_steps, repeats, amp)
            res["clip_length_seconds"][str(length)] = m["seconds_per_window"]
        res["settings"]["clip_length_steps"] = cl_steps

    # -- data pipeline and the cache -------------------------------------------------------------
    if big_on_cpu:
        for k in ("data_pipeline_ratio", "cached_speedup"):
            skipped[k] = "needs the svd training step, skipped on CPU"
            res[k] = None
    else:
        res.update(_data_and_cache(model, c, tcfg, dcfg, device, amp, quick, train_cps, log))

    # -- one window's time breakdown and batched / compiled whole-sequence prediction -------------
    if big_on_cpu:
        for k in ("window_breakdown", "predict_batched"):
            skipped[k] = "svd on CPU: a 100-frame prediction takes far too long (sample.4 times one window)"
            res[k] = None
        res["predict_speedup"] = None
    else:
        res.update(_predict_figures(model, c, device, amp, quick, repeats, compile, log))

    # -- streaming memory ------------------------------------------------------------------------
    if config == "svd":
        skipped["predict_memory_ratio_1024_vs_64"] = ("measured on the tiny config (streaming is the same code; "
                                                      "1024 svd frames take too long for a benchmark)")
        res["predict_memory_ratio_1024_vs_64"] = None
    else:
        log("streaming prediction memory, 64 vs 1024 frames (child processes) ...")
        pm = measure_predict_memory(config, (64, 1024), steps=1, window=n)
        res["predict_memory_ratio_1024_vs_64"] = pm["ratio"]
        res["predict_memory"] = {"steps": 1, "window": n, "overlap": 4, "growth_mb_1024_vs_64": pm["growth_mb"],
                                 "runs": pm["runs"]}

    # -- model-FLOP utilisation ------------------------------------------------------------------
    peak, source = peak_tflops_for(res["machine"], "bf16" if amp else "fp32", peak_tflops)
    res["peak_tflops"] = peak
    res["peak_source"] = source
    res["mfu"] = model_flop_utilisation(res, flops, peak)
    if peak is None:
        skipped["mfu"] = source

    log("done")
    res["load_average"]["end"] = _load_average()
    res["section_seconds"] = sections
    res["skipped"] = skipped
    res["targets"] = _check_targets(res, config)
    res["wall_seconds"] = round(time.perf_counter() - t_all, 1)
    return res


def _data_and_cache(model, c, tcfg, dcfg, device, amp, quick, train_cps, log) -> dict:
    from egopressdiff.data.clips import ClipDataset
    from egopressdiff.data.synth import generate_dataset
    from egopressdiff.training.cache import cache_size_bytes, prepare_cache

    out = {}
    bs, workers = tcfg["batch_size"], dcfg["num_workers"]
    n = c.clip_length
    with tempfile.TemporaryDirectory(prefix="egopressdiff-bench-") as tmp:
        frames = max(2 * n, 48) if quick else max(4 * n, 96)
        seqs = 1 if quick else 2
        log(f"generating synthetic data ({seqs} sequence(s) x {frames} frames) ...")
        t0 = time.perf_counter()
        generate_dataset(Path(tmp) / "data", participants=1, sequences=seqs, frames=frames, seed=0, progress=False)
        gen_s = time.perf_counter() - t0
        ds = ClipDataset(Path(tmp) / "data", clip_length=n, stride=max(1, n // (2 if quick else 4)), crop_size=c.crop_size,
                         uv_conditioning=c.cond_space == "uv", uv_cond_size=c.uv_cond_size, skip_short=True)
        if len(ds) < 2 * bs:
            raise RuntimeError(f"synthetic benchmark data gave only {len(ds)} clips")
        batches = 1 if quick else 4
        log(f"ClipDataset throughput ({len(ds)} clips, {workers} workers) ...")
        ld = measure_loader(ds, bs, workers, batches)
        out["data_pipeline"] = {**ld, "dataset_clips": len(ds), "generate_seconds": round(gen_s, 2),
                                "train_clips_per_second": train_cps}
        out["data_pipeline_ratio"] = _r(ld["clips_per_second"] / train_cps, 3)

        log("frozen-encoder cache: build, then whole training steps with and without it ...")
        t0 = time.perf_counter()
        cache = prepare_cache(model, ds, Path(tmp) / "cache", batch_size=bs, num_workers=workers, device=device,
                              progress=False)
        build_s = time.perf_counter() - t0
        cl = measure_loader(cache, bs, workers, batches)
        steps = 1 if quick else 3
        s_plain = measure_steps_from_loader(model, ds, bs, workers, steps, device, amp)
        s_cached = measure_steps_from_loader(model, cache, bs, workers, steps, device, amp)
        out["cache"] = {"build_seconds": round(build_s, 2), "size_mb": round(cache_size_bytes(cache) / 2**20, 2),
                        "clips": len(cache), "loader_clips_per_second": cl["clips_per_second"],
                        "step_seconds_uncached": _r(s_plain), "step_seconds_cached": _r(s_cached)}
        out["cached_data_pipeline_ratio"] = _r(cl["clips_per_second"] / train_cps, 3)
        out["cached_speedup"] = _r(s_plain / s_cached, 3)
        del cache
    return out


def _predict_figures(model, c, device, amp, quick, repeats, compile, log) -> dict:
    """``window_breakdown`` and ``predict_batched`` on one synthetic recording held in memory."""
    from egopressdiff.pipelines import EgoPressDiffPipeline

    out = {}
    frames = 40 if quick else 100
    steps = 1 if quick else c.sample_steps
    batch_sizes = (1, 2) if quick else (1, 2, 4, 8)
    precision = "bf16" if amp else "fp32"
    with tempfile.TemporaryDirectory(prefix="egopressdiff-bench-") as tmp:
        log(f"synthetic recording in memory ({frames} frames) ...")
        rec = in_memory_recording(tmp, frames)
    model.eval()
    log(f"time breakdown of one sampled window ({steps} steps) ...")
    pipe = EgoPressDiffPipeline(model).set_precision(precision)
    out["window_breakdown"] = measure_window_breakdown(pipe, rec, steps, device, repeats)
    log(f"whole-sequence predict, batch sizes {list(batch_sizes)}" + (" + torch.compile" if compile else "")
        + " ...")
    pb = measure_predict_batched(model, rec, steps, batch_sizes, device, 1 if quick else min(repeats, 3),
                                 precision, "inductor" if compile else None, window=c.clip_length)
    out["predict_batched"] = pb
    out["predict_speedup"] = pb["speedup"]
    return out


def _check_targets(res: dict, config: str) -> dict:
    out = {}
    for key, (op, bound) in TARGETS.items():
        v = res.get(key)
        met = None if v is None else (v <= bound if op == "<=" else v >= bound)
        out[key] = {"target": f"{op} {bound}", "value": v, "met": met}
    return out


# ---------------------------------------------------------------------------------------------- table
def _fmt(v, nd=3) -> str:
    if v is None:
        return "skipped"
    if isinstance(v, float):
        return f"{v:.{nd}f}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


def _tf(flops) -> str:
    return "skipped" if not flops else f"{flops / 1e12:.4g} TFLOP"


def _perf_rows(res: dict) -> list[tuple[str, str]]:
    """Table rows of the FLOP, MFU, breakdown, batched-prediction and training-profile figures."""
    rows = []
    f = res.get("flops")
    if f:
        rows.append(("counted FLOPs: U-Net forward (1 window) / train step",
                     f"{_tf(f['unet_forward'])} / {_tf(f['train']['total'])} (fwd {_tf(f['train']['forward'])}, "
                     f"bwd {_tf(f['train']['backward'])})"))
    mfu = res.get("mfu") or {}
    peak = res.get("peak_tflops")
    for k, m in (mfu.get("sample") or {}).items():
        rows.append((f"  sampling {k} steps: achieved / MFU", f"{_fmt(m['tflops_per_second'], 4)} TFLOP/s / "
                     + ("n/a" if m["mfu"] is None else f"{100 * m['mfu']:.2f} % of {peak:g}")))
    for k in ("sample_unet_only", "train", "train_cached"):
        m = mfu.get(k)
        if m:
            rows.append((f"  {k.replace('_', ' ')}: achieved / MFU", f"{_fmt(m['tflops_per_second'], 4)} TFLOP/s / "
                         + ("n/a" if m["mfu"] is None else f"{100 * m['mfu']:.2f} % of {peak:g}")))
    br = res.get("window_breakdown")
    if br:
        parts = ", ".join(f"{k} {100 * v:.0f}%" for k, v in br["share"].items() if v is not None)
        rows.append((f"one window ({br['frames']} frames, {br['steps']} steps): {_fmt(br['seconds_total'])} s", parts))
    pb = res.get("predict_batched")
    if pb:
        eager = " / ".join(f"{e['frames_per_second']:.1f}" for e in pb["eager"].values())
        rows.append((f"predict {pb['frames']} frames, batch {'/'.join(pb['eager'])} (eager)", f"{eager} frames/s"))
        for k, e in (pb.get("compiled") or {}).items():
            rows.append((f"  compiled, batch {k}", f"{e['frames_per_second']:.1f} frames/s ({_fmt(e['speedup'])}x), "
                         f"first call {_fmt(e['first_call_seconds'], 1)} s"))
        b = pb["best"]
        rows.append(("  best vs batch 1 eager", f"{_fmt(pb['speedup'])}x ({b['variant']}, batch {b['batch_size']})"))
    tp = res.get("train_profile")
    if tp:
        top = sorted(tp["share"].items(), key=lambda kv: -(kv[1] or 0))[:4]
        rows.append(("training step profile", ", ".join(f"{k} {100 * v:.0f}%" for k, v in top)))
    op = res.get("optimizer_step_seconds")
    if op:
        rows.append(("AdamW step: for-loop / foreach / fused",
                     " / ".join(_fmt(op.get(k), 4) for k in ("for_loop", "foreach", "fused")) + " s"))
    return rows


def format_table(res: dict) -> str:
    m = res["machine"]
    lines = [f"egopressdiff bench --config {res['config']} on {m['device']}: {m['cpu']}, "
             f"{m['physical_cores']} cores, {m['torch_threads']} torch threads"
             + (f", GPU {m['gpu']}" if m.get("gpu") else "")
             + f"; torch {m['versions']['torch']}, diffusers {m['versions'].get('diffusers')}"
             + (" (quick)" if res["settings"]["quick"] else ""), ""]
    rows = []
    t = res.get("train")
    if t:
        rows.append((f"train step (B={t['batch_size']} x {t['clip_length']} frames)",
                     f"{_fmt(t['seconds_per_step'])} s/step, {_fmt(t['clips_per_second'], 2)} clips/s, "
                     f"peak {_fmt(t['peak_memory_mb'], 0)} MB"))
    tc = res.get("train_cached")
    if tc:
        rows.append(("train step, cached encoder outputs", f"{_fmt(tc['seconds_per_step'])} s/step, "
                     f"{_fmt(tc['clips_per_second'], 2)} clips/s, peak {_fmt(tc['peak_memory_mb'], 0)} MB"))
    for k, s in res["sample"].items():
        rows.append((f"sampling, {k} steps (1 window)", "skipped" if s is None else
                     f"{_fmt(s['seconds_per_window'])} s/window, {_fmt(s['frames_per_second'], 2)} frames/s, "
                     f"peak {_fmt(s['peak_memory_mb'], 0)} MB"))
    rows += _perf_rows(res)
    rows.append(("conditioning overhead vs vanilla U-Net", _fmt(res.get("conditioning_overhead_ratio"))
                 + f"  (per sampling step {_fmt(res.get('conditioning_overhead_ratio_per_sampling_step'))})"))
    rows.append(("PoseNet / Vertex Encoder share", f"{_fmt(res.get('posenet_share'))} / "
                                                   f"{_fmt(res.get('vertex_encoder_share'))}"))
    dp = res.get("data_pipeline")
    rows.append(("data pipeline / training consumption", _fmt(res.get("data_pipeline_ratio"))
                 + (f"  ({_fmt(dp['clips_per_second'], 2)} clips/s, {dp['workers']} workers)" if dp else "")))
    if res.get("cached_data_pipeline_ratio") is not None:
        rows.append(("  same, from the encoder cache", _fmt(res["cached_data_pipeline_ratio"], 1)))
    cl = res.get("clip_length_seconds")
    rows.append(("sampling s/window at 8 / 16 / 32 frames", "skipped" if cl is None else
                 " / ".join(_fmt(cl[k]) for k in ("8", "16", "32"))))
    pm = res.get("predict_memory")
    rows.append(("predict peak RSS, 1024 / 64 frames", _fmt(res.get("predict_memory_ratio_1024_vs_64"))
                 + (f"  ({_fmt(pm['runs']['1024']['peak_rss_mb'], 0)} / {_fmt(pm['runs']['64']['peak_rss_mb'], 0)} MB)"
                    if pm else "")))
    ch = res.get("cache")
    rows.append(("cached training step speed-up", _fmt(res.get("cached_speedup"))
                 + (f"  ({_fmt(ch['step_seconds_uncached'])} -> {_fmt(ch['step_seconds_cached'])} s/step incl. data;"
                    f" model only {_fmt(res.get('cached_speedup_model_only'))}x)" if ch else "")))
    w = max(len(a) for a, _ in rows)
    lines += [f"{a:<{w}}  {b}" for a, b in rows]
    lines.append("")
    for key, tg in res["targets"].items():
        verdict = "n/a" if tg["met"] is None else ("met" if tg["met"] else "NOT met")
        lines.append(f"target {key} {tg['target']}: {_fmt(tg['value'])} -> {verdict}")
    for key, why in res["skipped"].items():
        lines.append(f"skipped {key}: {why}")
    return "\n".join(lines)
