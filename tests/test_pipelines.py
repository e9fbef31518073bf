"""The pipelines: in-memory arrays of any length -> PressureOutput, with tiny dummy components.

In the style of diffusers' pipeline tests: tiny random models (32-wide U-Net), a few frames,
real behaviour on CPU in seconds. The one shipped-model test checks that the in-memory path
gives exactly what ``egopressdiff predict`` gives on the same recording.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from egopressdiff.data.reader import EgoPressureReader
from egopressdiff.errors import CheckpointError, EgoPressDiffError, InputError

REF = Path(__file__).parent / "data" / "reference"
P, S = "p_001", "p_001_press_palm_high_x5_right"


@pytest.fixture(scope="module")
def recording():
    """The reference sequence as a user would hold it in memory (no dataset, no pressure)."""
    r = EgoPressureReader(REF / "data")
    frames = r.predictable_frames(P, S)
    anns = [r.load_annotation(P, S, int(f)) for f in frames]
    intr = r.intrinsics(P, S)
    return {
        "frames": frames,
        "rgb": np.stack([r.load_rgb(P, S, int(f)) for f in frames]),
        "depth_raw": np.stack([r.load_depth_raw(P, S, int(f)) for f in frames]),
        "depth_calibration": r.depth_calibration(P, S),
        "vertices_world": np.stack([a.vertices for a in anns]),
        "joints_world": np.stack([a.joints for a in anns]),
        "ego_R": np.stack([a.ego_R for a in anns]),
        "ego_T": np.stack([a.ego_T for a in anns]),
        "vertices_cam": np.stack([a.vertices_cam for a in anns]),
        "joints_cam": np.stack([a.joints_cam for a in anns]),
        "K": intr.K,
        "intrinsics": intr,
    }


def _registered_depth_mm(rec):
    """Depth registered to the colour image, in millimetres (what an RGB-D camera SDK hands out)."""
    from egopressdiff.data.calibration import register_depth_to_color

    intr = rec["intrinsics"]
    return np.stack([np.rint(register_depth_to_color(d, rec["depth_calibration"], intr) * 1000).astype(np.uint16)
                     for d in rec["depth_raw"]])


@pytest.fixture(scope="module")
def tiny_pipe():
    from egopressdiff.models import EgoPressDiff
    from egopressdiff.pipelines import EgoPressDiffPipeline

    torch.manual_seed(0)
    model = EgoPressDiff.from_config("tiny", clip_length=4, cond_space="uv", uv_cond_size=56)
    return EgoPressDiffPipeline(model)


def _call(pipe, rec, n=6, **kw):
    depth = kw.pop("depth", None)
    if depth is None:
        depth = _registered_depth_mm(rec)[:n]
    return pipe(rec["rgb"][:n], depth, rec["vertices_cam"][:n], rec["joints_cam"][:n], rec["K"], **kw)


def test_tiny_pipeline_predicts_any_length_from_numpy_and_torch(tiny_pipe, recording):
    out = _call(tiny_pipe, recording, n=6, num_inference_steps=2, seed=1)  # 6 frames: 2 windows of 4
    assert out.pressure_kpa.shape == (6, 224, 224) and out.pressure_kpa.dtype == np.float32
    assert out.pressure_std_kpa is None
    assert out.force_n.shape == (6,) and out.contact.shape == (6,) and out.contact.dtype == bool
    assert np.isfinite(out.pressure_kpa).all() and (out.pressure_kpa >= 0).all()
    from egopressdiff.data.hand import synthetic_atlas

    mask = synthetic_atlas("right").mask(224)
    assert np.all(out.pressure_kpa[:, mask == 0] == 0)  # masked by the UV mask
    assert out.pressure_kpa.max() > 0  # an untrained model still puts something on the hand
    np.testing.assert_allclose(out.force_n, synthetic_atlas("right").total_force_newtons(
        out.pressure_kpa, recording["vertices_cam"][:6]), rtol=1e-5)
    # torch tensors give the same maps; the same seed the same maps; another seed others
    again = tiny_pipe(torch.from_numpy(recording["rgb"][:6]), torch.from_numpy(_registered_depth_mm(recording)[:6]),
                      torch.from_numpy(recording["vertices_cam"][:6]), torch.from_numpy(recording["joints_cam"][:6]),
                      torch.from_numpy(recording["K"]), num_inference_steps=2, seed=1)
    np.testing.assert_array_equal(again.pressure_kpa, out.pressure_kpa)
    other = _call(tiny_pipe, recording, n=6, num_inference_steps=2, seed=2)
    assert not np.array_equal(other.pressure_kpa, out.pressure_kpa)
    # a generator draws the seed: the same generator state gives the same maps
    a = _call(tiny_pipe, recording, n=3, num_inference_steps=1, generator=torch.Generator().manual_seed(5))
    b = _call(tiny_pipe, recording, n=3, num_inference_steps=1, generator=torch.Generator().manual_seed(5))
    np.testing.assert_array_equal(a.pressure_kpa, b.pressure_kpa)


def test_samples_give_a_spread(tiny_pipe, recording):
    out = _call(tiny_pipe, recording, n=4, num_inference_steps=1, num_samples=3)
    assert out.pressure_std_kpa.shape == (4, 224, 224)
    assert (out.pressure_std_kpa >= 0).all() and out.pressure_std_kpa.max() > 0


def test_world_frame_and_raw_sensor_depth_are_accepted(tiny_pipe, recording):
    rec = recording
    out = tiny_pipe(rec["rgb"][:4], rec["depth_raw"][:4], rec["vertices_world"][:4], rec["joints_world"][:4],
                    {"fx": rec["intrinsics"].fx, "fy": rec["intrinsics"].fy, "cx": rec["intrinsics"].cx,
                     "cy": rec["intrinsics"].cy},
                    ego_R=rec["ego_R"][:4], ego_T=rec["ego_T"][:4], depth_calibration=rec["depth_calibration"],
                    num_inference_steps=1)
    assert out.pressure_kpa.shape == (4, 224, 224)


def test_bad_arrays_get_one_clear_error(tiny_pipe, recording):
    rec = recording
    depth = _registered_depth_mm(rec)[:4]
    rgb, verts, joints, K = rec["rgb"][:4], rec["vertices_cam"][:4], rec["joints_cam"][:4], rec["K"]
    bad_verts = verts.copy()
    bad_verts[2, 10, 0] = np.nan
    cases = [
        ((rgb[..., :2], depth, verts, joints, K), r"rgb must have shape \(T, H, W, 3\)"),
        ((rgb, depth[:3], verts, joints, K), r"depth has 3 frames but rgb has 4"),
        ((rgb, depth, verts[:, :700], joints, K), r"vertices must have shape \(T, 778, 3\)"),
        ((rgb, depth, bad_verts, joints, K), r"vertices holds NaN or inf \(frame 2\)"),
        ((rgb.astype(np.int64), depth, verts, joints, K), r"rgb must be uint8 .* got dtype int64"),
        ((rgb.astype(np.float32), depth, verts, joints, K), r"rgb as floats must lie in \[0, 1\]"),
        ((rgb, depth.astype(str), verts, joints, K), r"depth must be a numeric array"),
        ((rgb, depth[:, :50], verts, joints, K), r"registered depth must share the colour image's pixel grid"),
        ((rgb, depth, verts, joints, np.eye(2)), r"intrinsics must be a 3x3 K matrix"),
        ((rgb, depth, verts[:, :, ::-1] * -1, joints, K), r"behind the camera"),
    ]
    for args, pattern in cases:
        with pytest.raises(EgoPressDiffError, match=pattern) as e:
            tiny_pipe(*args, num_inference_steps=1)
        assert "\n" not in str(e.value)
    with pytest.raises(InputError, match="hand_side must be 'left' or 'right'"):
        tiny_pipe(rgb, depth, verts, joints, K, hand_side="both")
    with pytest.raises(InputError, match="give both ego_R and ego_T"):
        tiny_pipe(rgb, depth, verts, joints, K, ego_R=rec["ego_R"][:4])


def test_in_memory_path_equals_egopressdiff_predict(recording, tmp_path):
    """A shipped model through the pipeline on in-memory frames = ``predict`` on the dataset (same frames)."""
    from egopressdiff.inference import PredictOptions, predict_dataset
    from egopressdiff.pipelines import EgoPressDiffPipeline

    pipe = EgoPressDiffPipeline.from_pretrained("synthetic-egopressdiff")
    rec = recording
    out = pipe(rec["rgb"], rec["depth_raw"], rec["vertices_world"], rec["joints_world"], rec["intrinsics"],
               ego_R=rec["ego_R"], ego_T=rec["ego_T"], depth_calibration=rec["depth_calibration"], seed=0)
    predict_dataset(pipe, REF / "data", tmp_path, split="all", options=PredictOptions(progress=False))
    on_disk = np.load(tmp_path / P / f"{S}.npz")
    np.testing.assert_array_equal(on_disk["frame"], rec["frames"])
    np.testing.assert_allclose(out.pressure_kpa, on_disk["pressure_kpa"], atol=1e-5)
    assert out.contact.any() and out.force_n.max() > 1.0  # the reference sequence presses the palm


def test_from_pretrained_names_folders_and_wrong_types(tmp_path):
    import egopressdiff
    from egopressdiff.pipelines import EgoPressDiffPipeline, PerFrameBaselinePipeline, load_pipeline

    assert egopressdiff.EgoPressDiffPipeline is EgoPressDiffPipeline
    pipe = load_pipeline("synthetic-baseline-reg")
    assert isinstance(pipe, PerFrameBaselinePipeline)
    pipe.save_pretrained(tmp_path / "reg")
    assert isinstance(PerFrameBaselinePipeline.from_pretrained(tmp_path / "reg"), PerFrameBaselinePipeline)
    with pytest.raises(CheckpointError, match="perframe_baseline.*EgoPressDiffPipeline needs 'egopressdiff'"):
        EgoPressDiffPipeline.from_pretrained(tmp_path / "reg")
    with pytest.raises(CheckpointError, match="not found"):
        EgoPressDiffPipeline.from_pretrained(tmp_path / "nothing-here")


def test_baseline_pipeline_ignores_sampling_arguments(recording):
    from egopressdiff.pipelines import PerFrameBaselinePipeline

    pipe = PerFrameBaselinePipeline.from_pretrained("synthetic-baseline-cls")
    a = _call(pipe, recording, n=5, seed=0)
    b = _call(pipe, recording, n=5, seed=7, num_inference_steps=3)
    np.testing.assert_array_equal(a.pressure_kpa, b.pressure_kpa)
    assert a.pressure_std_kpa is None and a.pressure_kpa.shape == (5, 224, 224)


def test_batched_windows_equal_one_window_at_a_time(tiny_pipe, recording):
    """Several windows per model call: the same maps (each frame's noise depends on its id only)."""
    one = _call(tiny_pipe, recording, n=10, num_inference_steps=2, seed=3, window=4, overlap=1,
                batch_size=1)  # 3 windows, one per call
    three = _call(tiny_pipe, recording, n=10, num_inference_steps=2, seed=3, window=4, overlap=1, batch_size=3)
    two = _call(tiny_pipe, recording, n=10, num_inference_steps=2, seed=3, window=4, overlap=1, batch_size=2)
    assert one.pressure_kpa.max() > 0
    np.testing.assert_allclose(three.pressure_kpa, one.pressure_kpa, rtol=1e-3, atol=2e-3)
    np.testing.assert_allclose(two.pressure_kpa, one.pressure_kpa, rtol=1e-3, atol=2e-3)
