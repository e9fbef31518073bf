"""The stored annotation is an annotator's fit: contact patches rest on the pad, no force-proportional
penetration, a ~1 mm residual uncorrelated with force; the physics (which does penetrate) stays internal."""

import numpy as np
import pyarrow.parquet as pq
import pytest

from egopressdiff.data import layout
from egopressdiff.data.hand import build_hand, synthetic_atlas
from egopressdiff.data.synth import Imperfections, generate_dataset, make_participant
from egopressdiff.data.synth.annotation import MEASURED_KPA, PULL_RANGE_M
from egopressdiff.data.synth.gestures import SequencePlan
from egopressdiff.data.synth.sequence import ANNOTATION_STREAM, SequenceSimulation, sequence_rng

GESTURES = ("press_palm_high_x5", "press_fingers_high_5x", "index_press_high_x5", "pinch_thumb-down_high_5x",
            "press_flat_onebyone_high_3x", "index_press_pull_x5")


def _simulate(gesture, imperf, seed=4, frames=40, side="right", index=0):
    plan = SequencePlan("p_001", index, 0, gesture, side)
    part = make_participant(index, seed, imperf)
    keys = (seed, index, 0)
    sim = SequenceSimulation(plan, frames, part, sequence_rng(*keys), sequence_rng(*keys, ANNOTATION_STREAM), imperf)
    return sim, [sim.frame(i) for i in range(frames)]


@pytest.fixture(scope="module")
def frames_default():
    return {g: _simulate(g, Imperfections()) for g in GESTURES}


def _contact_vertices(frames_by_gesture):
    """Pooled (stored z, physical z, pressure) of the vertices under measured pressure."""
    z, zp, p = [], [], []
    for _, states in frames_by_gesture.values():
        for st in states:
            if not st.annotated:
                continue
            m = (st.pressure > MEASURED_KPA) & (st.vertices[:, 2] > -PULL_RANGE_M)
            z.append(st.annotation["vertices"][m, 2].astype(np.float64))
            zp.append(st.vertices[m, 2])
            p.append(st.pressure[m])
    return np.concatenate(z), np.concatenate(zp), np.concatenate(p)


def test_contact_patches_rest_on_the_pad_without_force_proportional_penetration(frames_default):
    z, z_phys, p = _contact_vertices(frames_default)
    assert len(p) > 2000
    # the physics presses into the pad, deeper with more pressure (the information is there, internally)
    assert z_phys.max() > 0.002 and np.corrcoef(np.maximum(z_phys, 0), p)[0, 1] > 0.5
    # the stored fit: no vertex under measured pressure deeper than a few mm, about 1 mm off the plane
    assert z.max() < 0.004
    assert 0.0003 < np.sqrt(np.mean(z**2)) < 0.002
    # and what is left is a residual, not a measure of force
    assert abs(np.corrcoef(np.maximum(z, 0), p)[0, 1]) < 0.25
    assert abs(np.corrcoef(z, p)[0, 1]) < 0.25
    assert abs(np.corrcoef(z, np.log(p))[0, 1]) < 0.25


def test_residual_is_about_a_millimetre_and_smooth(frames_default):
    hand = build_hand("right")
    err, rough = [], []
    for _, states in frames_default.values():
        for st in states:
            if st.annotated:
                e = st.annotation["vertices"].astype(np.float64) - st.surface
                err.append(np.linalg.norm(e, axis=1))
                rough.append(np.linalg.norm(e - hand.neighbour_mean @ e, axis=1))  # vs its neighbours' mean
    err, rough = np.concatenate(err), np.concatenate(rough)
    assert 0.0006 < np.sqrt(np.mean(err**2)) < 0.002  # about 1 mm
    assert np.quantile(err, 0.99) < 0.005  # a few mm at most
    assert np.sqrt(np.mean(rough**2)) < 0.25 * np.sqrt(np.mean(err**2))  # smooth over the surface


def test_format_identity_and_flattening_in_displacement(frames_default):
    disp, depth = [], []
    for sim, states in frames_default.values():
        for st in states:
            if not st.annotated:
                continue
            a = st.annotation
            fit = a["vertices"] - a["displacement"][:, None] * a["normals"]  # vertices = LBS + displacement * normals
            # what remains is a rigid articulated hand: its normals are the stored ones, its wrist the stored transl
            np.testing.assert_allclose(sim.hand.vertex_normals(fit.astype(np.float64)), a["normals"], atol=2e-3)
            np.testing.assert_allclose(a["transl"], a["joint_position"][0])
            assert np.abs(a["displacement"]).max() <= 0.008 + 1e-7  # real data: up to about 8 mm
            deep = (st.pressure > MEASURED_KPA) & (st.vertices[:, 2] > 0.0015)
            disp.append(a["displacement"][deep])
            depth.append(st.vertices[deep, 2])
    disp, depth = np.concatenate(disp), np.concatenate(depth)
    assert len(disp) > 100
    # the flattening is carried in displacement: inwards (negative), by about the physical penetration
    assert disp.mean() < -0.001
    assert np.corrcoef(disp, -depth)[0, 1] > 0.25


def test_clean_mode_is_an_exact_fit():
    _, states = _simulate("press_fingers_high_5x", Imperfections.none())
    n = 0
    for st in states:
        if st.annotated:
            m = (st.pressure > MEASURED_KPA) & (st.vertices[:, 2] > -PULL_RANGE_M)
            n += m.sum()
            np.testing.assert_allclose(st.annotation["vertices"][m, 2], 0.0, atol=5e-5)  # exactly on the pad
            free = st.pressure == 0
            np.testing.assert_allclose(st.annotation["vertices"][free], st.surface[free], atol=1e-5)
    assert n > 100


def test_hover_annotation_stays_above_the_pad():
    _, states = _simulate("press_palm_no-contact_x5", Imperfections())
    for st in states:
        assert st.pressure.max() == 0 and st.vertices[:, 2].max() < -0.0015  # the physical hand never touches
        if st.annotated:
            assert st.annotation["vertices"][:, 2].max() < 0.0  # within the residual: still above the pad


def test_annotation_deterministic_and_own_stream():
    _, a = _simulate("index_press_high_x5", Imperfections(), seed=9)
    _, b = _simulate("index_press_high_x5", Imperfections(), seed=9)
    for x, y in zip(a, b):
        if x.annotated:
            for k in x.annotation:
                np.testing.assert_array_equal(x.annotation[k], y.annotation[k])
    # the residual does not change what physically happens (it draws from its own RNG stream)
    _, c = _simulate("index_press_high_x5", Imperfections(annotation_residual=0.0), seed=9)
    for x, y in zip(a, c):
        np.testing.assert_array_equal(x.vertices, y.vertices)
        np.testing.assert_array_equal(x.pressure, y.pressure)


def test_stored_dataset_penetration_uncorrelated_with_pressure(tmp_path):
    """On the written files: vertices under pressure (read from the stored UV map at the vertices' UVs)."""
    root = tmp_path / "ds"
    generate_dataset(root, participants=1, sequences=4, frames=24, seed=3, image_size=(64, 48), progress=False)
    z, p = [], []
    for seq_dir in sorted((root / "data" / "p_001").iterdir()):
        s = seq_dir.name
        side = s.rsplit("_", 1)[1]
        atlas = synthetic_atlas(side)
        # one UV per vertex (any of its corners): the texel holding the vertex's own pressure
        uv = np.zeros((778, 2))
        uv[atlas.faces.reshape(-1)] = atlas.uvs[atlas.uv_faces.reshape(-1)]
        col = np.rint(uv[:, 0] * 223).astype(int)
        row = np.rint((1 - uv[:, 1]) * 223).astype(int)
        an = pq.read_table(layout.shard_path(root, "p_001", s, layout.ANNOTATION_SHARD)).to_pylist()
        pr = pq.read_table(layout.shard_path(root, "p_001", s, layout.PRESSURE_SHARD)).to_pylist()
        for ra, rp in zip(an, pr):
            if not ra["has_annotation"]:
                continue
            kpa = layout.uv_map_to_kpa(np.asarray(rp["pressure_map"], np.float32), np.asarray(rp["pressure_map_range"]))
            pv = kpa.reshape(224, 224)[row, col]
            v = np.asarray(ra["vertices"]).reshape(778, 3)
            m = pv > 2.0
            z.append(v[m, 2])
            p.append(pv[m])
    z, p = np.concatenate(z), np.concatenate(p)
    assert len(p) > 200
    assert z.max() < 0.004  # no vertex under pressure more than a few mm below the pad
    assert abs(np.corrcoef(z, p)[0, 1]) < 0.3
