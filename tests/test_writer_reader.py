"""Writer -> reader round trip of every column, units, frame numbering, row-group reads, splits, `info`."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from egopressdiff.data import layout
from egopressdiff.data.reader import EgoPressureReader
from egopressdiff.data.splits import describe_split, split_participants
from egopressdiff.data.writer import ROW_GROUP_SIZE, encode_jpeg, encode_png
from egopressdiff.errors import ConfigError, DataError

P, S = "p_001", "p_001_press_palm_high_x5_right"


@pytest.fixture(scope="module")
def written(tmp_path_factory, make_sequence):
    root = tmp_path_factory.mktemp("rt")
    records = make_sequence(root, P, S, 24, unannotated={1, 2, 20}, missing={12}, dropped_color={7})
    return root, {r.frame: r for r in records}


def _decode(b):
    return np.asarray(Image.open(io.BytesIO(b)))


def test_every_column_round_trips(written):
    root, recs = written
    r = EgoPressureReader(root)
    assert r.participants() == [P] and r.sequences(P) == [S]
    for f, rec in recs.items():
        ann = r.load_annotation(P, S, f)
        assert ann.frame == f and ann.hand_side == "right"
        np.testing.assert_allclose(ann.ego_R, rec.ego_R, atol=1e-7)
        np.testing.assert_allclose(ann.ego_T, np.float32(rec.ego_T), atol=1e-7)
        np.testing.assert_array_equal(r.load_depth_raw(P, S, f), _decode(rec.depth_png))
        np.testing.assert_array_equal(r.load_mask(P, S, f), _decode(rec.mask_png))
        if rec.image_jpeg is not None:
            np.testing.assert_array_equal(r.load_rgb(P, S, f), _decode(rec.image_jpeg))
        if rec.annotation is None:
            assert not ann.has_annotation and ann.vertices is None and ann.joints is None
            assert r.load_pressure(P, S, f, required=False) is None
            assert r.load_force(P, S, f, required=False) is None
            continue
        assert ann.has_annotation
        for key, attr in (("vertices", "vertices"), ("joint_position", "joints"), ("betas", "betas"),
                          ("full_pose", "full_pose"), ("transl", "transl"), ("normals", "normals"),
                          ("displacement", "displacement"), ("visible_vertices", "visible_vertices")):
            got = getattr(ann, attr)
            assert got.shape == layout.ANNOTATION_SHAPES[key] and got.dtype == np.float32
            np.testing.assert_array_equal(got, np.asarray(rec.annotation[key], np.float32).reshape(got.shape))
        np.testing.assert_allclose(ann.vertices_cam, ann.vertices @ ann.ego_R.T + ann.ego_T, atol=1e-6)
        # pressure: the fake sequence stores 5 + f kPa in one block
        kpa = r.load_pressure(P, S, f)
        assert kpa.shape == (224, 224)
        np.testing.assert_allclose(kpa[60:120, 80:140], 5.0 + f, rtol=1e-5)
        assert kpa[:60].max() == 0
        np.testing.assert_allclose(r.load_force(P, S, f)[45, 85], 10.0 * f * layout.KPA_PER_COUNT, rtol=1e-6)


def test_stored_format_matches_the_real_layout(written):
    root, _ = written
    d = layout.sequence_dir(root, P, S)
    assert sorted(p.name for p in d.iterdir()) == sorted(layout.SHARDS)
    t = pq.read_table(d / layout.ANNOTATION_SHARD)
    assert t.column("frame").to_pylist()[:3] == [1, 2, 3]
    row = {c: t.column(c)[4].as_py() for c in t.column_names}  # frame 5, annotated
    assert len(row["vertices"]) == 778 * 3 and len(row["visible_vertices"]) == 7 * 778 and len(row["ego_R"]) == 9
    unann = {c: t.column(c)[0].as_py() for c in t.column_names}  # frame 1
    assert unann["has_annotation"] is False and unann["vertices"] is None and len(unann["ego_T"]) == 3
    assert unann["hand_side"] == "right"
    pt = pq.read_table(d / layout.PRESSURE_SHARD)
    assert len(pt.column("force")[4].as_py()) == 105 * 185 and len(pt.column("pressure_map")[4].as_py()) == 224 * 224
    ct = pq.read_table(d / layout.COLOR_SHARD)
    cell = ct.column("image")[0].as_py()
    assert set(cell) == {"bytes", "path"} and cell["bytes"][:2] == b"\xff\xd8"  # JPEG magic
    assert 7 not in ct.column("frame").to_pylist()
    assert pq.ParquetFile(d / layout.ANNOTATION_SHARD).metadata.num_row_groups == -(-23 // ROW_GROUP_SIZE)
    assert (root / "configs" / P / f"{S}.json").exists() and layout.k4a_calibration_path(root, P, S).exists()


def test_frames_from_one_and_gaps_and_drops(written):
    root, _ = written
    r = EgoPressureReader(root)
    frames = r.frames(P, S)
    assert frames[0] == 1 and 12 not in frames and len(frames) == 23
    assert list(r.annotated_frames(P, S)) == [f for f in range(3, 25) if f not in (12, 20)]
    assert 7 not in r.shard_frames(P, S, layout.COLOR_SHARD)
    with pytest.raises(DataError, match=r"frame missing.*frame 7.*cam-d.color.parquet"):
        r.load_rgb(P, S, 7)


def test_row_group_granular_reads(written):
    root, _ = written
    r = EgoPressureReader(root, cache_row_groups=2)
    r.load_annotation(P, S, 3)
    assert len(r._groups) == 1  # only the group holding frame 3 was decoded
    r.load_annotation(P, S, 4)
    assert len(r._groups) == 1  # same group, from the cache
    r.load_annotation(P, S, 24)
    r.load_pressure(P, S, 24)
    assert len(r._groups) == 2  # LRU bound holds


def test_units_counts_kpa():
    assert layout.KPA_PER_COUNT == pytest.approx(0.3687, abs=1e-4)
    np.testing.assert_allclose(layout.kpa_to_counts(layout.counts_to_kpa([0.0, 1.0, 1736.0])), [0, 1, 1736], rtol=1e-6)
    # 1736 counts on one cell = 1 N on 1.5625 mm^2 = 640 kPa
    assert float(layout.counts_to_kpa(1736.0)) == pytest.approx(1.0 / 0.00125**2 / 1000, rel=1e-6)
    kpa = np.zeros((224, 224), np.float32)
    kpa[10, 10], kpa[20, 30] = 3.0, 12.0
    norm, rng = layout.kpa_to_uv_map(kpa)
    assert norm.max() == pytest.approx(1.0) and rng[1] == pytest.approx(12.0 / layout.KPA_PER_COUNT, rel=1e-6)
    np.testing.assert_allclose(layout.uv_map_to_kpa(norm, rng), kpa, rtol=1e-5, atol=1e-6)


def test_registered_depth_and_frame_dict(written):
    root, _ = written
    r = EgoPressureReader(root)
    fr = r.load_frame(P, S, 5)
    assert fr["rgb"].shape == (48, 64, 3) and fr["rgb"].dtype == np.uint8
    d = fr["depth"]
    assert d.shape == (48, 64) and d.dtype == np.float32
    valid = d > 0
    assert valid.mean() > 0.7
    # pad at camera height ~0.5 m; the hand is a little nearer
    assert 0.45 < np.median(d[valid]) < 0.55
    assert fr["pressure_kpa"].shape == (224, 224) and fr["force_kpa"].shape == (105, 185)
    assert fr["vertices_cam"].shape == (778, 3) and fr["joints_cam"].shape == (21, 3)


def test_reader_pickles_without_handles(written):
    root, _ = written
    r = EgoPressureReader(root)
    r.load_rgb(P, S, 5)
    blob = pickle.dumps(r)
    assert len(blob) < 2000
    r2 = pickle.loads(blob)
    np.testing.assert_array_equal(r2.load_rgb(P, S, 5), r.load_rgb(P, S, 5))


def test_encoders_round_trip():
    rng = np.random.default_rng(0)
    d16 = rng.integers(0, 65535, (7, 9)).astype(np.uint16)
    np.testing.assert_array_equal(_decode(encode_png(d16)), d16)
    m8 = rng.integers(0, 255, (7, 9)).astype(np.uint8)
    np.testing.assert_array_equal(_decode(encode_png(m8)), m8)
    img = np.full((8, 8, 3), 128, np.uint8)
    assert np.abs(_decode(encode_jpeg(img)).astype(int) - 128).max() <= 2
    with pytest.raises(ValueError):
        encode_png(np.zeros((3, 3), np.float32))


def test_splits_deterministic_and_disjoint():
    ps = [f"p_{i:03d}" for i in range(1, 11)]
    t = describe_split(list(reversed(ps)))
    assert t["test"] == ["p_009", "p_010"] and t["val"] == ["p_008"] and t["train"] == ps[:7]
    assert t["held_out"]
    three = describe_split(["c", "a", "b"])
    assert three["train"] == ["a"] and three["val"] == ["b"] and three["test"] == ["c"]
    assert split_participants(["x"], "test") == ["x"] and not describe_split(["x"])["held_out"]
    with pytest.raises(ConfigError):
        split_participants(ps, "dev")


def test_info_command(fake_root, capsys, tmp_path):
    from egopressdiff.cli.main import main

    out_json = tmp_path / "info.json"
    assert main(["info", str(fake_root), "--full", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    for name in ("p_001", "p_002", "p_003", "p_001_press_palm_high_x5_right", "TOTAL", "contact", "max kPa"):
        assert name in out
    import json

    info = json.loads(out_json.read_text())
    seq = next(s for s in info["sequences"] if s["sequence"] == "p_001_press_palm_high_x5_right")
    assert seq["frames"] == 23 and seq["annotated"] == 20 and seq["contact_frames"] == 20
    assert seq["max_kpa"] == pytest.approx(5.0 + 24, rel=1e-4)
    assert main(["info", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
