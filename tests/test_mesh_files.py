"""The user's own hand meshes (``predict --mesh DIR``): a folder of per-sequence .npz files in place of the
annotation's mesh, in the world or the camera frame, with estimator failures held over and clear errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from egopressdiff.data.clips import ClipDataset
from egopressdiff.data.mesh_files import MeshFolder, write_mesh_file
from egopressdiff.data.reader import EgoPressureReader
from egopressdiff.data.synth import generate_dataset
from egopressdiff.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("meshdata") / "data"
    generate_dataset(root, participants=1, sequences=1, frames=20, seed=4, image_size=(160, 120), progress=False)
    return root


def _track(reader, mesh):
    """(participant, sequence, frames, vertices, joints, ego_R, ego_T) of the dataset's one sequence."""
    (p,) = reader.participants()
    (s,) = reader.sequences(p)
    frames = reader.predictable_frames(p, s)
    anns = [reader.load_annotation(p, s, int(f)) for f in frames]
    if mesh == "estimated":
        vj = [reader.load_estimated_mesh(p, s, int(f)) for f in frames]
    else:
        vj = [(a.vertices, a.joints) for a in anns]
    return (p, s, frames, np.stack([v for v, _ in vj]), np.stack([j for _, j in vj]),
            np.stack([a.ego_R for a in anns]), np.stack([a.ego_T for a in anns]))


def test_world_frame_files_give_the_same_inputs_as_the_track_they_hold(data, tmp_path):
    reader = EgoPressureReader(data)
    p, s, frames, v, j, _, _ = _track(reader, "estimated")
    write_mesh_file(tmp_path / "meshes", p, s, frames, v, j)
    own = ClipDataset(data, clip_length=4, stride=8, mesh=str(tmp_path / "meshes"))
    est = ClipDataset(data, clip_length=4, stride=8, mesh="estimated")
    ann = ClipDataset(data, clip_length=4, stride=8)
    a, b, c = own[0], est[0], ann[0]
    for key in ("vertices", "uv_cond", "pose_map", "rgb"):
        if key in a:
            assert np.allclose(a[key].numpy(), b[key].numpy(), atol=1e-5), key
    assert not np.allclose(a["vertices"].numpy(), c["vertices"].numpy(), atol=1e-3)  # not the annotation's


def test_camera_frame_files_are_turned_into_the_world_frame(data, tmp_path):
    reader = EgoPressureReader(data)
    p, s, frames, v, j, R, T = _track(reader, "annotated")
    vc = np.einsum("fij,fvj->fvi", R, v) + T[:, None]  # world -> ego colour camera, as estimators give it
    jc = np.einsum("fij,fvj->fvi", R, j) + T[:, None]
    write_mesh_file(tmp_path / "cam", p, s, frames, vc, jc, coordinates="camera")
    folder = MeshFolder(tmp_path / "cam")
    for k in (0, len(frames) // 2):
        vw, jw = folder.mesh(p, s, int(frames[k]), R[k], T[k])
        assert np.abs(vw - v[k]).max() < 1e-5 and np.abs(jw - j[k]).max() < 1e-5
    a = ClipDataset(data, clip_length=4, stride=8, mesh=str(tmp_path / "cam"))[0]
    b = ClipDataset(data, clip_length=4, stride=8)[0]
    assert np.allclose(a["vertices"].numpy(), b["vertices"].numpy(), atol=1e-4)


def test_estimator_failures_take_the_nearest_valid_frame(data, tmp_path):
    reader = EgoPressureReader(data)
    p, s, frames, v, j, _, _ = _track(reader, "annotated")
    v = v.copy()
    v[1] = np.nan  # a failed estimate: the frame before (nearest, earlier on a tie) stands in
    v[3:5] = np.nan
    write_mesh_file(tmp_path / "m", p, s, frames, v, j)
    folder = MeshFolder(tmp_path / "m")
    got = [folder.mesh(p, s, int(f))[0] for f in frames[:6]]
    assert np.array_equal(got[1], v[0]) and np.array_equal(got[3], v[2]) and np.array_equal(got[4], v[5])
    assert np.array_equal(got[5], v[5])


@pytest.mark.parametrize("damage, words", [
    ("no-file", "no mesh file"),
    ("missing-frame", "frame missing from the mesh file"),
    ("shape", "'vertices' has shape"),
    ("all-nan", "NaN on every frame"),
    ("no-joints", "no 'joint_position' array"),
    ("garbage", "cannot read mesh file"),
])
def test_bad_mesh_files_are_one_line_naming_the_file(data, tmp_path, damage, words):
    reader = EgoPressureReader(data)
    p, s, frames, v, j, _, _ = _track(reader, "annotated")
    root = tmp_path / "m"
    (root / p).mkdir(parents=True)
    path = root / p / f"{s}.npz"
    if damage == "missing-frame":
        write_mesh_file(root, p, s, frames[:-3], v[:-3], j[:-3])
    elif damage == "shape":
        write_mesh_file(root, p, s, frames, v[:, :700], j)
    elif damage == "all-nan":
        write_mesh_file(root, p, s, frames, np.full_like(v, np.nan), j)
    elif damage == "no-joints":
        np.savez(path, frame=frames, vertices=v)
    elif damage == "garbage":
        path.write_bytes(b"not an npz")
    with pytest.raises(DataError) as exc:
        folder = MeshFolder(root)
        folder.check_covers(p, s, frames)
        folder.mesh(p, s, int(frames[0]))
    msg = str(exc.value)
    assert words in msg and "\n" not in msg and (s in msg or str(path) in msg)
    assert damage == "no-file" or str(path) in msg


def test_mesh_must_be_a_name_or_a_folder(data, tmp_path):
    with pytest.raises(ConfigError, match="mesh must be one of"):
        ClipDataset(data, clip_length=4, mesh=str(tmp_path / "nowhere"))


def _predict(data, out, *extra):
    cmd = [sys.executable, "-m", "egopressdiff", "predict", "--checkpoint", "synthetic-baseline-reg", "--data",
           str(data), "--output", str(out), "--split", "all", "--no-progress", *extra]
    return subprocess.run(cmd, capture_output=True, text=True)


def test_predict_with_own_meshes_matches_the_track_they_hold_and_checks_up_front(data, tmp_path):
    reader = EgoPressureReader(data)
    p, s, frames, v, j, _, _ = _track(reader, "estimated")
    write_mesh_file(tmp_path / "meshes", p, s, frames, v, j)
    a = _predict(data, tmp_path / "own", "--mesh", str(tmp_path / "meshes"))
    b = _predict(data, tmp_path / "est", "--mesh", "estimated")
    assert a.returncode == 0 and b.returncode == 0, (a.stderr, b.stderr)
    assert json.loads((tmp_path / "own" / "predict_info.json").read_text())["mesh"] == str(tmp_path / "meshes")
    (fa,) = (tmp_path / "own").rglob("*.npz")
    (fb,) = (tmp_path / "est").rglob("*.npz")
    assert np.allclose(np.load(fa)["pressure_kpa"], np.load(fb)["pressure_kpa"], atol=1e-4)
    # a file that lacks frames to predict: one line, exit 2, nothing written
    write_mesh_file(tmp_path / "short", p, s, frames[:5], v[:5], j[:5])
    r = _predict(data, tmp_path / "bad", "--mesh", str(tmp_path / "short"))
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1 and "frame missing from the mesh file" in lines[0]
    assert f"frame {int(frames[5])}" in lines[0] and not list((tmp_path / "bad").rglob("*.npz"))
    r = _predict(data, tmp_path / "bad2", "--mesh", str(tmp_path / "nowhere"))
    assert r.returncode == 2 and "not 'annotated', 'estimated' or a folder" in r.stderr
