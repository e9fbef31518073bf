"""Bad input: every case is one DataError naming the file, the sequence and (where it applies) the frame."""

from __future__ import annotations

import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from egopressdiff.data import layout
from egopressdiff.data.clips import ClipDataset
from egopressdiff.data.reader import EgoPressureReader
from egopressdiff.errors import DataError

P, S = "p_001", "p_001_press_palm_high_x5_right"


@pytest.fixture(scope="module")
def good(tmp_path_factory, make_sequence):
    root = tmp_path_factory.mktemp("good")
    make_sequence(root, P, S, 6)
    return root


@pytest.fixture
def root(good, tmp_path):
    dst = tmp_path / "data_root"
    shutil.copytree(good, dst)
    return dst


def shard(root, name):
    return layout.shard_path(root, P, S, name)


def test_missing_or_empty_root(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        EgoPressureReader(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="not an EgoPressure dataset root.*empty"):
        EgoPressureReader(tmp_path / "empty")


@pytest.mark.parametrize("name", layout.SHARDS)
def test_missing_shard(root, name, fake_mano_dir):
    shard(root, name).unlink()
    with pytest.raises(DataError, match=rf"missing shard \(sequence {S}, file .*{name}\)"):
        ClipDataset(root, clip_length=2, crop_size=16)


@pytest.mark.parametrize("which", ["config", "k4a"])
def test_missing_calibration(root, which):
    path = layout.config_path(root, P, S) if which == "config" else layout.k4a_calibration_path(root, P, S)
    path.unlink()
    with pytest.raises(DataError, match=rf"missing calibration file \(sequence {S}, file .*{path.name}\)"):
        ClipDataset(root, clip_length=2, crop_size=16)


def test_malformed_calibration(root):
    layout.config_path(root, P, S).write_text("{ not json")
    with pytest.raises(DataError, match=r"not valid JSON.*sequence p_001_press"):
        EgoPressureReader(root).intrinsics(P, S)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_parquet(root, damage):
    path = shard(root, layout.ANNOTATION_SHARD)
    data = path.read_bytes()
    path.write_bytes(b"not a parquet file at all" if damage == "garbage" else data[: len(data) // 2])
    with pytest.raises(DataError, match=rf"cannot read Parquet shard.*sequence {S}, file .*annotation.parquet"):
        EgoPressureReader(root).frames(P, S)


def _rewrite_cell(root, name, column, frame, value, type_=None):
    path = shard(root, name)
    t = pq.read_table(path)
    vals = t.column(column).to_pylist()
    idx = t.column("frame").to_pylist().index(frame)
    vals[idx] = value
    t = t.set_column(t.schema.get_field_index(column), column, pa.array(vals, type_ or t.schema.field(column).type))
    pq.write_table(t, path, row_group_size=4)


@pytest.mark.parametrize("shard_name,loader", [(layout.COLOR_SHARD, "load_rgb"), (layout.DEPTH_SHARD, "load_depth_raw"),
                                               (layout.MASK_SHARD, "load_mask")])
def test_truncated_image(root, shard_name, loader):
    col = {layout.COLOR_SHARD: "image", layout.DEPTH_SHARD: "depth", layout.MASK_SHARD: "mask"}[shard_name]
    cell = pq.read_table(shard(root, shard_name)).column(col)[3].as_py()
    _rewrite_cell(root, shard_name, col, 4, {"bytes": cell["bytes"][: len(cell["bytes"]) // 2], "path": cell["path"]})
    r = EgoPressureReader(root)
    getattr(r, loader)(P, S, 3)  # the neighbours still read
    with pytest.raises(DataError, match=rf"corrupt image.*sequence {S}, frame 4, file .*{shard_name}"):
        getattr(r, loader)(P, S, 4)


def test_wrong_array_length(root):
    _rewrite_cell(root, layout.ANNOTATION_SHARD, "vertices", 5, [0.1] * (778 * 3 - 3))
    with pytest.raises(DataError, match=rf"vertices has 2331 values, expected 2334.*sequence {S}, frame 5, file .*annotation"):
        EgoPressureReader(root).load_annotation(P, S, 5)


def test_wrong_pressure_length(root):
    _rewrite_cell(root, layout.PRESSURE_SHARD, "pressure_map", 2, [0.0] * 100)
    with pytest.raises(DataError, match=r"pressure_map has 100 values.*frame 2, file .*pressure.parquet"):
        EgoPressureReader(root).load_pressure(P, S, 2)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_or_inf_vertices(root, bad):
    v = pq.read_table(shard(root, layout.ANNOTATION_SHARD)).column("vertices")[2].as_py()
    v[100] = bad
    _rewrite_cell(root, layout.ANNOTATION_SHARD, "vertices", 3, v)
    with pytest.raises(DataError, match=rf"vertices contains NaN or inf.*sequence {S}, frame 3"):
        EgoPressureReader(root).load_annotation(P, S, 3)


def test_nan_in_force_grid(root):
    f = pq.read_table(shard(root, layout.PRESSURE_SHARD)).column("force")[0].as_py()
    f[7] = float("nan")
    _rewrite_cell(root, layout.PRESSURE_SHARD, "force", 1, f)
    with pytest.raises(DataError, match=r"force contains NaN.*frame 1"):
        EgoPressureReader(root).load_force(P, S, 1)


def test_duplicated_frames(root):
    path = shard(root, layout.MASK_SHARD)
    t = pq.read_table(path)
    frames = t.column("frame").to_pylist()
    frames[3] = frames[2]
    pq.write_table(t.set_column(0, "frame", pa.array(frames, pa.int64())), path)
    with pytest.raises(DataError, match=rf"duplicated frame in shard.*sequence {S}, frame 3, file .*mask"):
        EgoPressureReader(root).load_mask(P, S, 1)


def test_null_on_annotated_frame(root):
    _rewrite_cell(root, layout.ANNOTATION_SHARD, "joint_position", 4, None)
    with pytest.raises(DataError, match=r"joint_position is null.*frame 4"):
        EgoPressureReader(root).load_annotation(P, S, 4)


def test_too_short_sequence(root, fake_mano_dir):
    with pytest.raises(DataError, match=rf"no run of 8 consecutive annotated frames.*sequence {S}"):
        ClipDataset(root, clip_length=8, crop_size=16)


def test_cli_reports_one_line_and_exit_2(root, capsys):
    from egopressdiff.cli.main import main

    shard(root, layout.PRESSURE_SHARD).write_bytes(b"PAR1 broken")
    assert main(["info", str(root)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("egopressdiff info: error: cannot read Parquet shard") and "pressure.parquet" in err[-1]


def test_wrong_shapes_rejected_by_the_writer(tmp_path):
    from egopressdiff.data.writer import FrameRecord, write_sequence

    rec = FrameRecord(frame=1, image_jpeg=b"", depth_png=b"", mask_png=b"", hand_side="right", ego_R=np.eye(3),
                      ego_T=np.zeros(3), annotation={"vertices": np.zeros((10, 3)), "joint_position": np.zeros((21, 3))})
    with pytest.raises(ValueError, match="vertices has 30 values"):
        write_sequence(tmp_path, P, S, [rec], {}, {})
    rec.annotation = None
    with pytest.raises(ValueError, match="strictly increase"):
        write_sequence(tmp_path, P, S, [rec, rec], {}, {})
    assert not (tmp_path / "data").exists()  # nothing half-written
