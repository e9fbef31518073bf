"""The synthetic dataset generator: layout, columns, physics invariants, determinism, CLI."""

import io
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from egopressdiff.data import layout
from egopressdiff.data.calibration import parse_config, parse_k4a
from egopressdiff.data.hand import build_hand, synthetic_atlas
from egopressdiff.data.physics import PressureBaker, SoftTissue, in_sensing_area, vertex_pressure
from egopressdiff.data.raster import PinholeCamera, rasterize
from egopressdiff.data.synth import (
    GENERATOR_VERSION,
    SYNTH_MARKER,
    CameraRig,
    ContactSolver,
    GestureTimeline,
    Imperfections,
    SequenceRenderer,
    color_camera,
    depth_camera,
    generate_dataset,
    gesture_order,
    make_participant,
    plan_dataset,
    sequence_rng,
)

SIZE = (96, 72)
FRAMES = 12


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    summary = generate_dataset(root, participants=1, sequences=3, frames=FRAMES, seed=7, image_size=SIZE,
                               progress=False)
    return root, summary


def _table(root, p, s, shard):
    return pq.read_table(layout.shard_path(root, p, s, shard))


def _kpa(pm, rng):
    return layout.uv_map_to_kpa(np.asarray(pm, np.float32), np.asarray(rng, np.float32))


# --------------------------------------------------------------------------- plan
def test_plan_covers_every_family_and_real_names():
    order = gesture_order()
    assert sorted(order) == sorted(g for gs in layout.GESTURE_FAMILIES.values() for g in gs)
    for participants, sequences in ((1, 7), (3, 6), (2, 4)):
        plans = plan_dataset(participants, sequences)
        assert {p.family for p in plans} == set(layout.GESTURE_FAMILIES)
        names = [p.name for p in plans]
        assert len(set(names)) == len(names)
        assert {p.side for p in plans} == {"left", "right"}
    assert plan_dataset(1, 2)[1].family == "hover"  # a hover as early as the 2nd sequence
    n = 2 * len(order)  # every gesture, left and right
    big = plan_dataset(1, n)
    assert len({p.name for p in big}) == n
    with pytest.raises(ValueError):
        plan_dataset(1, n + 1)


def test_every_gesture_stages_physically():
    """Every real gesture name: contact gestures press, hovers never touch, contact stays on the pad."""
    tissue = SoftTissue()
    for gesture in gesture_order():
        for side in ("right", "left"):
            hand = build_hand(side)
            tl = GestureTimeline(gesture, side, 16, np.random.default_rng(1), hand)
            solver = ContactSolver(hand, tissue)
            peak = 0.0
            for i in range(16):
                v, j, pose = solver.solve(tl.target(i), tl.spec.primary, tl.spec.hover)
                pen = v[:, 2] > 0
                if tl.spec.hover:
                    assert v[:, 2].max() < -0.0015, (gesture, i)  # at least ~2 mm above the pad
                    continue
                assert np.all(in_sensing_area(v[pen, 0], v[pen, 1])), (gesture, side, i)
                assert v[:, 2].max() < 0.012, (gesture, i)  # never absurdly deep
                f = float((vertex_pressure(hand, v, tissue) * 1000 * hand.vertex_areas(v)).sum())
                peak = max(peak, f)
                if not tl.target(i).annotated:
                    assert f == 0.0  # pre/post-contact frames: hand in the air
            if not tl.spec.hover:
                lo, hi = tl.spec.force
                assert 0.4 * lo < peak < 2.5 * hi, (gesture, side, peak)


# --------------------------------------------------------------------------- layout
def test_files_and_columns(ds):
    root, summary = ds
    seqs = [s["sequence"] for s in summary["sequences"]]
    assert seqs == [p.name for p in plan_dataset(1, 3)]
    assert all(s.startswith("p_001_") and s.rsplit("_", 1)[1] in ("left", "right") for s in seqs)
    assert sorted(x.name for x in (root / "configs").iterdir()) == ["p_001"]
    assert sorted(x.name for x in (root / "data").iterdir()) == ["p_001"]
    for s in seqs:
        assert layout.config_path(root, "p_001", s).is_file()
        assert layout.k4a_calibration_path(root, "p_001", s).is_file()
        assert sorted(x.name for x in layout.sequence_dir(root, "p_001", s).iterdir()) == sorted(layout.SHARDS)
        for shard, col in ((layout.COLOR_SHARD, "image"), (layout.DEPTH_SHARD, "depth"), (layout.MASK_SHARD, "mask")):
            t = _table(root, "p_001", s, shard)
            assert t.column_names == ["frame", col]
            assert t.schema.field(col).type.names == ["bytes", "path"]
            assert t.column("frame").to_pylist() == list(range(1, FRAMES + 1))
        pr = _table(root, "p_001", s, layout.PRESSURE_SHARD)
        assert pr.column_names == ["frame", "force", "pressure_map", "pressure_map_range"]
        an = _table(root, "p_001", s, layout.ANNOTATION_SHARD)
        assert set(an.column_names) == {"frame", "has_annotation", "hand_side", *layout.ANNOTATION_SHAPES,
                                        *layout.ESTIMATED_SHAPES}
        rows = an.to_pylist()
        prow = pr.to_pylist()
        has = [r["has_annotation"] for r in rows]
        assert has[0] is False and has[-1] is False and all(has[1:-1])  # pre/post-contact frames
        for r, q in zip(rows, prow):
            assert r["hand_side"] == s.rsplit("_", 1)[1]
            assert len(r["ego_R"]) == 9 and len(r["ego_T"]) == 3
            if not r["has_annotation"]:
                assert r["vertices"] is None and q["force"] is None and q["pressure_map"] is None
                continue
            for key, shape in layout.ANNOTATION_SHAPES.items():
                assert len(r[key]) == int(np.prod(shape)), key
            assert len(q["force"]) == 105 * 185 and len(q["pressure_map"]) == 224 * 224
            assert len(q["pressure_map_range"]) == 2
            vis = np.asarray(r["visible_vertices"]).reshape(7, 778)
            assert vis[0].sum() > 50 and np.all(vis[1:] == 0)
            R = np.asarray(r["ego_R"]).reshape(3, 3)
            assert np.allclose(R @ R.T, np.eye(3), atol=1e-5)


def test_config_calibration_and_images(ds):
    root, summary = ds
    s = summary["sequences"][0]["sequence"]
    cfg = json.loads(layout.config_path(root, "p_001", s).read_text())
    mark = cfg[SYNTH_MARKER]
    assert mark["hand_model"] == "procedural-v1" and mark["generator_version"] == GENERATOR_VERSION == 2
    assert mark["gesture"] == summary["sequences"][0]["gesture"] and mark["family"] == "palm_press"
    assert mark["intensity"] == "high"
    ci = parse_config(cfg)
    assert (ci.width, ci.height) == SIZE
    k4a = parse_k4a(json.loads(layout.k4a_calibration_path(root, "p_001", s).read_text()))
    assert np.allclose(k4a.dist, 0.0)  # zero distortion, the reader still runs its code
    assert 0.025 < np.linalg.norm(k4a.t) < 0.04
    col = _table(root, "p_001", s, layout.COLOR_SHARD).column("image").to_pylist()
    dep = _table(root, "p_001", s, layout.DEPTH_SHARD).column("depth").to_pylist()
    msk = _table(root, "p_001", s, layout.MASK_SHARD).column("mask").to_pylist()
    rgb = Image.open(io.BytesIO(col[5]["bytes"]))
    assert rgb.format == "JPEG" and rgb.size == SIZE
    d = np.array(Image.open(io.BytesIO(dep[5]["bytes"])))
    dc = depth_camera(SIZE)
    assert d.dtype == np.uint16 and d.shape == (dc.height, dc.width)
    valid = d[d > 0]
    assert 200 < np.median(valid) < 1500  # mm: the pad/hand 0.2 - 1.5 m away
    m = np.array(Image.open(io.BytesIO(msk[5]["bytes"])))
    assert m.shape == (SIZE[1], SIZE[0]) and set(np.unique(m)) <= {0, 255} and (m > 0).sum() > 50


def test_hover_never_touches(ds):
    root, summary = ds
    hovers = [s for s in summary["sequences"] if s["family"] == "hover"]
    assert hovers
    for s in hovers:
        assert s["min_hand_height_m"] > 0.0015 and s["contact_frames"] == 0
        an = _table(root, "p_001", s["sequence"], layout.ANNOTATION_SHARD).to_pylist()
        pr = _table(root, "p_001", s["sequence"], layout.PRESSURE_SHARD).to_pylist()
        for r, q in zip(an, pr):
            if r["has_annotation"]:
                v = np.asarray(r["vertices"]).reshape(778, 3)
                assert v[:, 2].max() < 0.0  # every vertex above the pad (+z points down)
                assert max(q["force"]) == 0.0 and max(q["pressure_map"]) == 0.0
                assert q["pressure_map_range"] == [0.0, 0.0]


def test_contact_force_agreement_and_magnitudes(ds):
    root, summary = ds
    n_contact = 0
    for s in summary["sequences"]:
        if s["family"] == "hover":
            continue
        atlas = synthetic_atlas(s["side"])
        an = _table(root, "p_001", s["sequence"], layout.ANNOTATION_SHARD).to_pylist()
        pr = _table(root, "p_001", s["sequence"], layout.PRESSURE_SHARD).to_pylist()
        for r, q in zip(an, pr):
            if not r["has_annotation"]:
                continue
            grid_n = float(np.sum(q["force"]) / layout.COUNTS_PER_NEWTON)
            kpa = _kpa(q["pressure_map"], q["pressure_map_range"])
            uv_n = float(atlas.total_force_newtons(kpa, np.asarray(r["vertices"]).reshape(778, 3)))
            if grid_n < 0.05:
                assert uv_n < 0.05
                continue
            n_contact += 1
            assert abs(uv_n - grid_n) / grid_n < 0.10
            assert 0.1 < kpa.max() < 300.0  # resting on the pad (the touch phases) can stay below 1 kPa
            if grid_n > 3.0:
                assert kpa.max() > 1.0
            assert 0.1 < grid_n < 120.0
            assert np.all(np.asarray(q["force"]) >= 0)
            assert np.all(kpa[atlas.mask(224) == 0] == 0)  # pressure only inside the UV mask
    assert n_contact >= 4


def test_deterministic(ds, tmp_path):
    root, summary = ds
    again = tmp_path / "again"
    generate_dataset(again, participants=1, sequences=3, frames=FRAMES, seed=7, image_size=SIZE, progress=False)
    files = sorted(p.relative_to(root) for p in Path(root).rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for f in files:
        assert (root / f).read_bytes() == (again / f).read_bytes(), f
    other = tmp_path / "other"
    generate_dataset(other, participants=1, sequences=1, frames=FRAMES, seed=8, image_size=SIZE, progress=False)
    s = summary["sequences"][0]["sequence"]
    a = layout.shard_path(root, "p_001", s, layout.COLOR_SHARD).read_bytes()
    assert a != layout.shard_path(other, "p_001", s, layout.COLOR_SHARD).read_bytes()


# --------------------------------------------------------------------------- renderer and imperfections
def test_rasterizer_matches_brute_force():
    rng = np.random.default_rng(3)
    cam = PinholeCamera(40.0, 40.0, 15.5, 11.5, 32, 24)
    pts = np.column_stack([rng.uniform(-0.3, 0.3, 30), rng.uniform(-0.25, 0.25, 30), rng.uniform(0.5, 1.0, 30)])
    faces = rng.integers(0, 30, (40, 3))
    faces = faces[(faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])]
    fr = rasterize(pts, faces, cam)
    u = cam.fx * pts[:, 0] / pts[:, 2] + cam.cx
    v = cam.fy * pts[:, 1] / pts[:, 2] + cam.cy
    best = np.full((24, 32), np.inf)  # nearest triangle strictly containing the pixel
    loose = np.full((24, 32), np.inf)  # ... or touching it within the edge tolerance
    for f in faces:
        a, b, c = np.stack([u[f], v[f]], 1)
        den = (b[0] - a[0]) * (c[1] - a[1]) - (c[0] - a[0]) * (b[1] - a[1])
        if abs(den) < 1e-9:
            continue
        yy, xx = np.mgrid[0:24, 0:32]
        w1 = ((xx - a[0]) * (c[1] - a[1]) - (c[0] - a[0]) * (yy - a[1])) / den
        w2 = ((b[0] - a[0]) * (yy - a[1]) - (xx - a[0]) * (b[1] - a[1])) / den
        w0 = 1 - w1 - w2
        inside = (w0 > 1e-3) & (w1 > 1e-3) & (w2 > 1e-3)  # strictly inside (edges are ambiguous)
        z = 1.0 / (w0 / pts[f[0], 2] + w1 / pts[f[1], 2] + w2 / pts[f[2], 2])
        best = np.where(inside & (z < best), z, best)
        touch = (w0 > -1e-3) & (w1 > -1e-3) & (w2 > -1e-3)
        loose = np.where(touch & (z < loose), z, loose)
    sure = np.isfinite(best)
    assert sure.sum() > 50
    assert np.all(fr.face[sure] >= 0)
    assert np.all(fr.depth[sure] <= best[sure] * (1 + 1e-5))
    assert np.all(fr.depth[sure] >= loose[sure] * (1 - 1e-3))
    assert np.mean(np.isclose(fr.depth[sure], best[sure], rtol=1e-5)) > 0.95
    assert np.all(np.isinf(fr.depth[~np.isfinite(loose)]))  # nothing drawn where no triangle is


def _render_once(imp, gesture="index_press_high_x5", frame=6):
    rng = sequence_rng(0, 0, 0)
    part = make_participant(0, 0, imp)
    hand = build_hand("right", part.shape)
    tl = GestureTimeline(gesture, "right", 12, rng, hand)
    solver = ContactSolver(hand, SoftTissue())
    rig = CameraRig(rng, 12, np.array([0.0, 0.0, -0.03]), 0.0, imp, tl.n_pre)
    ren = SequenceRenderer(hand, part, color_camera(SIZE), depth_camera(SIZE), rng, imp)
    for i in range(frame + 1):
        v, j, _ = solver.solve(tl.target(i), tl.spec.primary, tl.spec.hover)
    R, T = rig.pose(frame)
    return ren.render(frame, v, j, R, T, (4.0, 0.0)), rig


def test_imperfections_switch():
    (rgb0, d0, m0, vis0), rig0 = _render_once(Imperfections.none())
    assert (d0 == 0).sum() == 0  # clean: a depth value everywhere (pad, table, hand)
    assert not np.any(rig0.occ > 0)
    depth_only = replace(Imperfections.none(), depth_noise_mm=1.2, depth_hole_fraction=0.05, silhouette_holes=0.6)
    (rgb1, d1, m1, vis1), _ = _render_once(depth_only)
    assert (d1 == 0).mean() > 0.02  # holes
    assert np.abs(d1.astype(float) - d0.astype(float))[(d0 > 0) & (d1 > 0)].mean() > 0.1  # noise
    assert np.array_equal(m0, m1) and np.array_equal(rgb0, rgb1)  # depth imperfections touch depth only
    (rgb2, d2, m2, vis2), _ = _render_once(Imperfections())
    assert not np.array_equal(rgb0, rgb2)
    rig = CameraRig(np.random.default_rng(0), 48, np.zeros(3), 0.0, Imperfections(self_occlusion=1.0), 3)
    tilt = rig.occ > 0.5
    assert tilt.any() and (~tilt).any()
    elev = []
    for i in range(48):
        R, T = rig.pose(i)
        eye = -R.T @ T
        elev.append(np.degrees(np.arcsin(-eye[2] / np.linalg.norm(eye))))
    elev = np.array(elev)
    assert elev[tilt].mean() < elev[~tilt].mean() - 10  # the head comes down behind the hand
    assert np.all(elev > 10)


def test_self_occlusion_hides_contact(ds):
    root, summary = ds
    for s in summary["sequences"]:
        assert "occluded_contact_frames" in s and "camera_tilt_frames" in s


def test_pressure_baker_cache_is_per_side():
    b = PressureBaker(synthetic_atlas("left"))
    assert b.texel_index.size == int(synthetic_atlas("left").mask(224).sum())


# --------------------------------------------------------------------------- CLI
def test_cli(tmp_path, capsys):
    from egopressdiff.cli.main import main

    out = tmp_path / "ds"
    args = ["synth", str(out), "--participants", "1", "--sequences", "1", "--frames", "6", "--image-size", "64x48",
            "--no-progress"]
    assert main(args) == 0
    assert "wrote 1 sequences" in capsys.readouterr().out
    assert (out / "configs" / "p_001").is_dir() and not any(p.name.startswith(".") for p in tmp_path.iterdir())
    assert main(args) == 2  # non-empty OUT
    assert "not empty" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 0
    assert main(["synth", str(tmp_path / "x"), "--frames", "0"]) == 2
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["synth", str(f)]) == 2
    assert main(["synth", str(tmp_path / "y"), "--image-size", "big"]) == 2
    assert main(["synth", str(tmp_path / "y"), "--sequences", "99"]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 4 and all(len(line) < 200 for line in err.splitlines())
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["synth", str(empty), "--participants", "1", "--sequences", "1", "--frames", "4",
                 "--image-size", "64x48", "--no-progress"]) == 0


def test_cli_annotation_residual_scales_the_fit_residual(tmp_path, capsys):
    """--annotation-residual S scales the annotator's residual: 0 leaves no displacement off the contact
    patches, 2 doubles it; the value is recorded in the sequence's config."""
    from egopressdiff.cli.main import main
    from egopressdiff.data.reader import EgoPressureReader

    disp = {}
    for s in ("0", "1", "2"):
        out = tmp_path / f"r{s}"
        assert main(["synth", str(out), "--participants", "1", "--sequences", "1", "--frames", "16", "--image-size",
                     "64x48", "--no-progress", "--annotation-residual", s]) == 0
        (seq,) = (out / "data" / "p_001").iterdir()
        reader = EgoPressureReader(out)
        t = pq.read_table(seq / layout.ANNOTATION_SHARD).to_pydict()
        # annotated frames without pressure: nothing is flattened, the displacement is the residual alone
        free = [np.asarray(d, dtype=np.float64) for f, d, a in zip(t["frame"], t["displacement"], t["has_annotation"])
                if a and reader.load_pressure("p_001", seq.name, int(f)).max() == 0]
        assert len(free) >= 2
        disp[s] = float(np.sqrt(np.mean(np.square(free))))
        mark = json.loads((out / "configs" / "p_001" / f"{seq.name}.json").read_text())[SYNTH_MARKER]
        assert mark["imperfections"]["annotation_residual"] == float(s)
    assert disp["0"] == 0.0 and disp["1"] > 2e-4
    assert 1.9 < disp["2"] / disp["1"] < 2.1
    assert main(["synth", str(tmp_path / "bad"), "--annotation-residual", "-1"]) == 2
    assert "--annotation-residual" in capsys.readouterr().err
