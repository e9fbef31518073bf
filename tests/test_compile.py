"""Inference speed: encoders once per window, torch.compile, bf16 autocast, channels-last, depth registration.

All on CPU with the tiny model. The compile test uses the ``aot_eager`` backend: it runs
dynamo's tracing (through the PoseNet forward hook and the DC layers' per-frame context) and
AOT autograd without generating code, in seconds instead of inductor's minutes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from egopressdiff.errors import InputError

REF = Path(__file__).parent / "data" / "reference"
P, S = "p_001", "p_001_press_palm_high_x5_right"


def _tiny_pipe(clip_length=4, **over):
    from egopressdiff.models import EgoPressDiff
    from egopressdiff.pipelines import EgoPressDiffPipeline

    torch.manual_seed(0)
    return EgoPressDiffPipeline(EgoPressDiff.from_config("tiny", clip_length=clip_length, **over).eval())


def _batch(pipe, b=1, seed=3):
    from egopressdiff.models.testing import make_dummy_batch

    c = pipe.model.config
    uvc = c.uv_cond_size if c.cond_space == "uv" else None
    return make_dummy_batch(b, c.clip_length, crop_size=c.crop_size, uv_cond_size=uvc, seed=seed)


def _count_calls(model, monkeypatch) -> dict:
    """Calls of each part's entry point during what follows (forward hooks; the codec's methods wrapped)."""
    calls = {"unet": 0, "clip": 0, "vertex_encoder": 0, "posenet": 0, "uv_encoder": 0, "codec_encode": 0,
             "codec_decode": 0}

    def hook(name):
        def count(*_):
            calls[name] += 1
        return count

    for name, mod in (("unet", model.denoiser), ("clip", model.image_encoder),
                      ("vertex_encoder", model.vertex_encoder), ("posenet", model.posenet),
                      ("uv_encoder", model.uv_encoder)):
        if mod is not None:
            mod.register_forward_hook(hook(name))
    for name in ("encode", "decode"):
        fn = getattr(model.codec, name)

        def wrapped(*a, _fn=fn, _name=f"codec_{name}", **k):
            calls[_name] += 1
            return _fn(*a, **k)

        monkeypatch.setattr(model.codec, name, wrapped)
    return calls


@pytest.mark.parametrize("cond_space,sampler,steps,samples", [("image", "euler", 3, 1), ("uv", "euler", 2, 2),
                                                             ("image", "heun", 3, 1)])
def test_encoders_run_once_per_window_not_per_step(cond_space, sampler, steps, samples, monkeypatch):
    from egopressdiff.bench import unet_calls
    from egopressdiff.models.config import EDM_DEFAULTS

    pipe = _tiny_pipe(cond_space=cond_space, edm={**EDM_DEFAULTS, "sampler": sampler})
    calls = _count_calls(pipe.model, monkeypatch)
    pipe.sample(_batch(pipe), num_inference_steps=steps, seed=0, num_samples=samples)
    assert calls["unet"] == samples * unet_calls(steps, sampler) == samples * (steps if sampler == "euler"
                                                                               else 2 * steps - 1)
    assert calls["clip"] == calls["vertex_encoder"] == calls["posenet"] == 1
    if cond_space == "image":  # depth latents: one codec encode for the window
        assert calls["codec_encode"] == 1 and calls["uv_encoder"] == 0
    else:
        assert calls["uv_encoder"] == 1 and calls["codec_encode"] == 0
    assert calls["codec_decode"] == samples  # one decode per sample, not per step


def test_compiled_unet_matches_eager_and_keeps_the_state_dict():
    pipe = _tiny_pipe()
    batch = _batch(pipe)
    eager = pipe.sample(batch, num_inference_steps=3, seed=0)["pressure_kpa"]
    keys = list(pipe.model.state_dict())
    # fullgraph: no graph break anywhere in the U-Net (PoseNet hook, DC blocks' frame context)
    pipe.compile(backend="aot_eager", fullgraph=True, dynamic=False)
    compiled = pipe.sample(batch, num_inference_steps=3, seed=0)["pressure_kpa"]
    again = pipe.sample(_batch(pipe, seed=4), num_inference_steps=3, seed=1)["pressure_kpa"]  # new values, same shapes
    assert eager.abs().max() > 0.1  # the maps are not all zero: the comparison means something
    torch.testing.assert_close(compiled, eager, atol=1e-3, rtol=1e-4)
    assert not torch.allclose(again, compiled)  # the compiled graph follows its inputs
    assert list(pipe.model.state_dict()) == keys  # compiled in place: saving is unchanged
    assert pipe.model.denoiser._compiled_call_impl is not None


def test_compile_mode_auto_uses_cuda_graphs_only_on_cuda(monkeypatch):
    from egopressdiff.pipelines import EgoPressDiffPipeline

    pipe = _tiny_pipe()
    seen = []
    monkeypatch.setattr(pipe.model.denoiser, "compile", lambda **kw: seen.append(kw))
    pipe.compile()
    assert seen[-1]["mode"] is None and seen[-1]["backend"] == "inductor"
    monkeypatch.setattr(EgoPressDiffPipeline, "device", property(lambda self: torch.device("cuda")))
    pipe.compile()
    assert seen[-1]["mode"] == "reduce-overhead"
    pipe.compile(backend="aot_eager")  # CUDA graphs are an inductor mode
    assert seen[-1]["mode"] is None
    pipe.compile(mode="max-autotune")
    assert seen[-1]["mode"] == "max-autotune"


def test_precision_settings():
    pipe = _tiny_pipe()
    assert pipe.precision == "fp32" and pipe.autocast_dtype is None  # the API's default: unchanged fp32
    assert pipe.set_precision("auto").autocast_dtype is None  # auto: fp32 on the CPU
    assert pipe.set_precision("bf16").autocast_dtype == torch.bfloat16
    assert pipe.enable_autocast(torch.float32).precision == "fp32"
    assert pipe.enable_autocast().precision == "bf16"
    with pytest.raises(InputError, match="precision must be one of"):
        pipe.set_precision("fp16")
    with pytest.raises(InputError, match="autocast supports"):
        pipe.enable_autocast(torch.float16)


@pytest.fixture(scope="module")
def recording():
    """12 frames of the reference sequence, as a user holds them in memory."""
    from egopressdiff.data.reader import EgoPressureReader

    r = EgoPressureReader(REF / "data")
    frames = [int(f) for f in r.predictable_frames(P, S)][:12]
    anns = [r.load_annotation(P, S, f) for f in frames]
    return {"rgb": np.stack([r.load_rgb(P, S, f) for f in frames]),
            "depth": np.stack([r.load_depth_raw(P, S, f) for f in frames]),
            "depth_calibration": r.depth_calibration(P, S),
            "vertices": np.stack([a.vertices for a in anns]), "joints": np.stack([a.joints for a in anns]),
            "ego_R": np.stack([a.ego_R for a in anns]), "ego_T": np.stack([a.ego_T for a in anns]),
            "intrinsics": r.intrinsics(P, S)}


def test_bf16_autocast_runs_and_stays_close_to_fp32(recording):
    """The shipped (trained) tiny model on real-looking frames: bf16 autocast vs fp32."""
    from egopressdiff.pipelines import EgoPressDiffPipeline

    pipe = EgoPressDiffPipeline.from_pretrained("synthetic-egopressdiff")
    few = {k: (v[:8] if isinstance(v, np.ndarray) and len(v) == 12 else v) for k, v in recording.items()}  # 1 window
    dtypes = []
    pipe.model.denoiser.register_forward_hook(lambda m, i, out: dtypes.append(out.dtype))
    fp32 = pipe(**few, window=8, overlap=2, seed=0)
    assert set(dtypes) == {torch.float32}
    dtypes.clear()
    bf16 = pipe.set_precision("bf16")(**few, window=8, overlap=2, seed=0)
    assert set(dtypes) == {torch.bfloat16}  # autocast is really on: the U-Net computed in bfloat16
    a, b = fp32.pressure_kpa, bf16.pressure_kpa
    assert b.dtype == np.float32 and np.isfinite(b).all() and (b >= 0).all()
    assert a.max() > 5.0  # contact in the reference: the comparison means something
    # loose: bf16 keeps 8 mantissa bits, and 4 sampling steps carry the rounding along
    assert np.abs(a - b).mean() < 0.1 * np.abs(a).mean()
    assert np.abs(a - b).max() < 0.25 * a.max()
    assert (fp32.contact == bf16.contact).mean() >= 0.9


def test_channels_last_keeps_the_output():
    pipe = _tiny_pipe()
    batch = _batch(pipe)
    ref = pipe.sample(batch, num_inference_steps=2, seed=0)["pressure_kpa"]
    pipe.enable_channels_last()
    w4 = [p for p in pipe.model.denoiser.parameters() if p.dim() == 4]
    assert w4 and all(p.is_contiguous(memory_format=torch.channels_last) for p in w4)
    out = pipe.sample(batch, num_inference_steps=2, seed=0)["pressure_kpa"]
    torch.testing.assert_close(out, ref, atol=1e-3, rtol=1e-4)


def test_predict_cli_precision_and_compile(tmp_path, monkeypatch):
    """`predict --precision bf16 --compile` goes through the pipeline's options (compile traced with the
    eager backend here: inductor's code generation takes minutes on CPU)."""
    from egopressdiff.cli.main import main
    from egopressdiff.pipelines import EgoPressDiffPipeline

    seen = {}
    orig_compile, orig_sample = EgoPressDiffPipeline.compile, EgoPressDiffPipeline.sample

    def compile_eager(self, **kw):
        seen["compile"] = kw
        return orig_compile(self, backend="eager")

    def sample(self, *a, **kw):
        seen["precision"] = self.precision
        return orig_sample(self, *a, **kw)

    monkeypatch.setattr(EgoPressDiffPipeline, "compile", compile_eager)
    monkeypatch.setattr(EgoPressDiffPipeline, "sample", sample)
    out = tmp_path / "pred"
    assert main(["predict", "--checkpoint", "synthetic-egopressdiff", "--data", str(REF / "data"), "--output",
                 str(out), "--split", "all", "--precision", "bf16", "--compile", "--steps", "1",
                 "--no-progress"]) == 0
    assert seen == {"compile": {}, "precision": "bf16"}
    got = np.load(out / P / f"{S}.npz")
    assert got["pressure_kpa"].shape[1:] == (224, 224) and np.isfinite(got["pressure_kpa"]).all()


def test_predict_cli_refuses_an_unknown_precision(capsys):
    from egopressdiff.cli.main import main

    with pytest.raises(SystemExit) as e:  # argparse: usage + one line, exit code 2
        main(["predict", "--checkpoint", "x", "--data", "y", "--output", "z", "--precision", "fp16"])
    assert e.value.code == 2 and "--precision" in capsys.readouterr().err


def _register_by_splatting_every_sample(depth_mm, calib, ci, size, splat):
    """The registration as first written: every sample written to all its splat neighbours, nearest wins."""
    from egopressdiff.data.calibration import depth_rays

    W, H = size
    ci = ci.scaled(W, H) if (W, H) != (ci.width, ci.height) else ci
    rays = depth_rays(calib, depth_mm.shape[1], depth_mm.shape[0])
    valid = (depth_mm > 0) & np.isfinite(rays[..., 0])
    pts = rays[valid] * (depth_mm[valid].astype(np.float64) / 1000.0)[:, None]
    pts = pts @ calib.R.T + calib.t
    pts = pts[pts[:, 2] > 1e-4]
    z = pts[:, 2]
    u = np.rint(ci.fx * pts[:, 0] / z + ci.cx).astype(np.int64)
    v = np.rint(ci.fy * pts[:, 1] / z + ci.cy).astype(np.int64)
    out = np.full(H * W, np.inf)
    for du in range(-splat, splat + 1):
        for dv in range(-splat, splat + 1):
            ok = (u + du >= 0) & (u + du < W) & (v + dv >= 0) & (v + dv < H)
            np.minimum.at(out, (v + dv)[ok] * W + (u + du)[ok], z[ok])
    out[~np.isfinite(out)] = 0.0
    return out.reshape(H, W).astype(np.float32)


@pytest.mark.parametrize("splat", [0, 1, 3])
def test_depth_registration_equals_splatting_every_sample(recording, splat):
    """One z-buffer scatter + a minimum filter gives exactly the per-neighbour scatter's result,
    for crops inside the image, across its border and the whole image."""
    from egopressdiff.data.calibration import register_depth_to_color
    from egopressdiff.data.processor import crop_intrinsics

    intr, calib = recording["intrinsics"], recording["depth_calibration"]
    for i in (0, 7):
        depth = recording["depth"][i]
        for ci, size in ((crop_intrinsics(intr, 90, 50, 120, 64), (64, 64)),
                         (crop_intrinsics(intr, intr.width - 40, -30, 100, 48), (48, 48)),
                         (intr, (intr.width, intr.height))):
            want = _register_by_splatting_every_sample(depth, calib, ci, size, splat)
            got = register_depth_to_color(depth, calib, ci, size, splat=splat)
            assert (want > 0).mean() > 0.05  # the hand and the pad are in view: not an empty comparison
            np.testing.assert_array_equal(got, want)
