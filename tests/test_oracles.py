"""The geometry oracles (benchmarks/oracles.py, egopressdiff.evaluation.oracles).

On a small synthetic dataset built here: the monotone fit is monotone and optimal, it is
fitted on the train participants only, a quantity that IS the answer is recovered (Volumetric
IoU near 1) and noise is not (near 0), the estimated mesh track is really read, and the CLI
writes the JSON and fails in one line on bad input.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from egopressdiff.evaluation import oracles as O

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "oracles.py"


def _script():
    spec = importlib.util.spec_from_file_location("oracles_script", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def oracle_data(tmp_path_factory):
    """4 participants (train p_001-p_002, val p_003, test p_004) x 2 sequences x 24 frames."""
    from egopressdiff.data.synth import generate_dataset

    root = tmp_path_factory.mktemp("oracle_data")
    generate_dataset(root, participants=4, sequences=2, frames=24, seed=3, image_size=(96, 72), progress=False)
    return root


@pytest.fixture(scope="module")
def run(oracle_data):
    """One run with three extra quantities: the answer itself, noise, and one that flips on test."""
    calls = []
    noise = np.random.default_rng(5)

    def answer(ctx):
        calls.append((ctx["participant"], ctx["split"]))
        return np.log1p(ctx["gt"])  # a monotone function of the target

    def flipped(ctx):  # the answer on train, its mirror image on test
        return np.log1p(ctx["gt"]) * (1.0 if ctx["split"] == "train" else -1.0)

    opts = O.OracleOptions(uv_cond_size=32, fit_samples=150_000,
                           extra_channels={"answer": answer, "noise": lambda ctx: noise.random(ctx["gt"].shape),
                                           "flipped": flipped})
    return O.run_oracles(oracle_data, "both", opts), calls


# -- the monotone fit -------------------------------------------------------------------------


def _isotonic_minmax(y, w):
    """Independent formula of the weighted isotonic fit: f_i = max_{j<=i} min_{k>=i} mean(y_j..y_k)."""
    n = len(y)
    mean = lambda a, b: (w[a:b + 1] * y[a:b + 1]).sum() / w[a:b + 1].sum()  # noqa: E731
    return np.array([max(min(mean(j, k) for k in range(i, n)) for j in range(i + 1)) for i in range(n)])


def test_pool_adjacent_violators_is_the_isotonic_fit():
    rng = np.random.default_rng(0)
    for _ in range(20):
        y = rng.normal(size=11)
        w = rng.uniform(0.1, 3.0, size=11)
        fit = O.pool_adjacent_violators(y, w)
        assert np.all(np.diff(fit) >= -1e-12)
        np.testing.assert_allclose(fit, _isotonic_minmax(y, w), atol=1e-10)


def test_fit_recovers_a_monotone_function_in_either_direction():
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, 200_000)
    target = 40 * np.clip(x - 0.3, 0, None) ** 1.5
    for sign, direction in ((1, "increasing"), (-1, "decreasing")):
        m = O.fit_monotone_map(sign * x, target)
        assert m.direction == direction
        xt = rng.uniform(-1, 1, 50_000)
        yt = 40 * np.clip(xt - 0.3, 0, None) ** 1.5
        assert O.weighted_volumetric_iou(m(sign * xt), yt) > 0.97
        grid = m(np.linspace(-1.5, 1.5, 2001))  # beyond the knots too
        steps = np.diff(grid) * (1 if direction == "increasing" else -1)
        assert np.all(steps >= -1e-12)


def test_fit_on_noise_gives_nothing():
    rng = np.random.default_rng(2)
    x = rng.normal(size=100_000)
    y = np.where(rng.random(100_000) < 0.03, rng.uniform(1, 50, 100_000), 0.0)
    m = O.fit_monotone_map(x, y)
    x2 = rng.normal(size=100_000)
    y2 = np.where(rng.random(100_000) < 0.03, rng.uniform(1, 50, 100_000), 0.0)
    assert O.weighted_volumetric_iou(m(x2), y2) < 0.1


def test_pooled_zero_sample_is_exact():
    """The pad fit pools both-zero cells into one weighted sample; that gives the same curve."""
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.uniform(0, 3, 5000), np.zeros(20_000)])
    y = np.concatenate([np.maximum(0, 10 * x[:5000] - 5 + rng.normal(0, 1, 5000)), np.zeros(20_000)])
    full = O.fit_monotone_map(x, y)
    pooled = O.fit_monotone_map(np.append(x[:5000], 0.0), np.append(y[:5000], 0.0), np.append(np.ones(5000), 20_000))
    grid = np.linspace(0, 3, 301)
    np.testing.assert_allclose(full(grid), pooled(grid), atol=1e-9)
    assert full.train_volumetric_iou == pytest.approx(pooled.train_volumetric_iou, abs=1e-12)


# -- the building blocks ----------------------------------------------------------------------


def test_pad_penetration_rasterises_the_part_below_the_pad():
    from egopressdiff.data.physics import GRID_COLS, GRID_ROWS, cell_centres

    xs, ys = cell_centres()
    # one big triangle tilted through the pad: z = 0.004 - 0.1 * (x + 0.02)  (metres)
    v = np.array([[-0.0503, -0.0302, 0.0], [0.0301, -0.0302, 0.0], [-0.0503, 0.0398, 0.0]])  # edges off the centres
    v[:, 2] = 0.004 - 0.1 * (v[:, 0] + 0.02)
    pen = O.pad_penetration_mm(v, np.array([[0, 1, 2]]))
    assert pen.shape == (GRID_ROWS, GRID_COLS)
    X, Y = np.meshgrid(xs, ys)
    inside = (X >= -0.0503) & (Y >= -0.0302) & ((X + 0.0503) / 0.0804 + (Y + 0.0302) / 0.07 <= 1)
    expect = np.where(inside, np.maximum(0.0, 4.0 - 100 * (X + 0.02)), 0.0)  # mm, at the cell centres
    for x, y, z in v:  # and each vertex below the pad counts in its own cell
        c, r = np.argmin(np.abs(xs - x)), np.argmin(np.abs(ys - y))
        expect[r, c] = max(expect[r, c], 1000 * z) if z > 0 else expect[r, c]
    np.testing.assert_allclose(pen, expect, atol=1e-6)
    assert pen.max() > 5.0


def test_masked_upsampling_ignores_texels_outside_the_mask():
    mask = np.zeros((8, 8))
    mask[2:6, 2:6] = 1
    cond = np.where(mask > 0, 3.0, 0.0)
    up, covered = O.upsample_masked(cond[None], mask, 29)
    assert np.allclose(up[0][covered], 3.0)  # a constant inside the mask stays constant up to its border
    assert not covered[0, 0] and covered[14, 14]


# -- the tool on a dataset --------------------------------------------------------------------


def test_answer_is_recovered_noise_is_not_and_the_fit_is_train_only(run):
    res, calls = run
    uv = res["uv"]["oracles"]
    assert uv["answer"]["test"]["volumetric_iou"] > 0.9
    assert uv["answer"]["test"]["contact_iou"] > 0.9
    assert uv["noise"]["test"]["volumetric_iou"] < 0.1
    # fitted on train (where it is increasing) and scored on test, where it is mirrored
    assert uv["flipped"]["curve"]["direction"] == "increasing"
    assert uv["flipped"]["test"]["volumetric_iou"] < 0.05
    assert {p for p, s in calls if s == "train"} == set(res["split"]["train"]) == {"p_001", "p_002"}
    assert {p for p, s in calls if s == "test"} == set(res["split"]["test"]) == {"p_004"}
    assert not set(res["split"]["train"]) & set(res["split"]["test"])


def test_every_curve_is_monotone_and_every_figure_is_there(run):
    res, _ = run
    assert res["mesh"] == "annotated"
    curves = [o["curve"] for o in res["uv"]["oracles"].values()] + [res["pad"]["curve"]]
    assert set(O.UV_CHANNELS) | {O.HEIGHT_CHANNEL} <= set(res["uv"]["oracles"])
    for c in curves:
        d = np.diff(c["knots_kpa"]) * (1 if c["direction"] == "increasing" else -1)
        assert np.all(d >= -1e-9), c
        assert c["gain"] in O.GAINS and c["floor_kpa"] in O.FLOORS_KPA
    for r in [o["test"] for o in res["uv"]["oracles"].values()] + [res["pad"]["test"]]:
        for k in ("contact_iou", "volumetric_iou", "mae_kpa", "temporal_accuracy", "num_frames"):
            assert r[k] is not None and np.isfinite(r[k])
        assert r["per_sequence"] and r["per_gesture"]
        assert r["num_frames"] == res["uv"]["oracles"]["answer"]["test"]["num_frames"]
    assert res["pad"]["blur_width_cells"] in O.BLUR_WIDTHS_CELLS
    assert set(res["pad"]["train_volumetric_iou_by_width"]) == {f"{s:g}" for s in O.BLUR_WIDTHS_CELLS}
    assert res["uv"]["best_by_train"] == "answer"
    json.dumps(res, allow_nan=False)


def _with_estimated_track(src: Path, dst: Path, lift_m: float) -> None:
    """Copy the dataset, adding estimated-mesh columns = the annotation lifted by ``lift_m`` (null on frame 5)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    shutil.copytree(src, dst)
    for path in dst.glob("data/*/*/annotation.parquet"):
        tab = pq.read_table(path)
        tab = tab.drop([c for c in ("vertices_estimated", "joint_position_estimated") if c in tab.column_names])
        cols = {}
        for src_col, new_col in (("vertices", "vertices_estimated"), ("joint_position", "joint_position_estimated")):
            vals = []
            for frame, cell in zip(tab.column("frame").to_pylist(), tab.column(src_col).to_pylist()):
                if cell is None or frame == 5:
                    vals.append(None)
                    continue
                a = np.asarray(cell, np.float32).reshape(-1, 3)
                a[:, 2] -= lift_m
                vals.append(a.reshape(-1).tolist())
            cols[new_col] = pa.array(vals, type=pa.list_(pa.float32()))
        for name, arr in cols.items():
            tab = tab.append_column(name, arr)
        pq.write_table(tab, path, row_group_size=16)


def test_estimated_track_is_read(oracle_data, tmp_path):
    lifted = tmp_path / "lifted"
    _with_estimated_track(oracle_data, lifted, lift_m=0.03)  # 3 cm above: the estimate never touches the pad
    ann = O.run_oracles(lifted, "pad", O.OracleOptions(mesh="annotated"))
    est = O.run_oracles(lifted, "pad", O.OracleOptions(mesh="estimated"))
    assert est["mesh"] == "estimated"
    # the annotation no longer gives the pressure away (issue 13), but it does touch the pad;
    # an estimate 3 cm above it never does: a constant map at best
    assert ann["pad"]["test"]["volumetric_iou"] > 0.05
    assert est["pad"]["test"]["volumetric_iou"] < 0.05 and est["pad"]["test"]["volumetric_iou"] < \
        ann["pad"]["test"]["volumetric_iou"]
    reader = O.MeshTrackReader(lifted, "estimated")
    p, s = reader.all_sequences()[0]
    a5 = reader.load_annotation(p, s, 5)  # null estimate: the nearest frame's
    assert any(np.array_equal(a5.vertices, reader.estimated_mesh(p, s, f)[0]) for f in (4, 6))
    plain = O.MeshTrackReader(lifted, "annotated").load_annotation(p, s, 7)
    np.testing.assert_allclose(reader.load_annotation(p, s, 7).vertices[:, 2], plain.vertices[:, 2] - 0.03,
                               atol=1e-6)


def test_cli_writes_json_and_prints_the_table(oracle_data, tmp_path, capsys):
    out = tmp_path / "o.json"
    rc = _script().main([str(oracle_data), "--space", "pad", "--max-frames", "6", "--json", str(out), "--no-progress"])
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["max_frames_per_sequence"] == 6 and "uv" not in res
    assert res["pad"]["test"]["num_frames"] == 6 * 2
    assert "pad penetration" in capsys.readouterr().out


@pytest.mark.parametrize("args, says", [
    (["--mesh", "estimated"], "vertices_estimated"),
    (["--max-frames", "0"], "--max-frames"),
])
def test_cli_bad_input_is_one_line_exit_2(oracle_data, tmp_path, capsys, args, says):
    import pyarrow.parquet as pq

    bare = tmp_path / "no-track"  # data written without the estimated-mesh track (as real data is)
    shutil.copytree(oracle_data, bare)
    for path in bare.glob("data/*/*/annotation.parquet"):
        tab = pq.read_table(path)
        pq.write_table(tab.drop([c for c in ("vertices_estimated", "joint_position_estimated")
                                 if c in tab.column_names]), path, row_group_size=16)
    rc = _script().main([str(bare), "--space", "pad", "--no-progress", *args])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and says in err


def test_cli_needs_held_out_participants(tmp_path, capsys):
    from egopressdiff.data.synth import generate_dataset

    generate_dataset(tmp_path / "two", participants=2, sequences=1, frames=12, seed=0, image_size=(64, 48),
                     progress=False)
    rc = _script().main([str(tmp_path / "two"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "participants" in err
