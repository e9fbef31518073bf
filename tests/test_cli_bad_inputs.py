"""Bad input, tried systematically: every case runs the real CLI and must end with exit code 2,
one line on stderr naming the problem and the file / sequence / frame, no traceback, and no
output that looks complete (no prediction .npz, predict_info.json, index.html, model folder,
train_summary.json or dataset under its final name).

Each case is a function ``(ctx) -> (argv, pattern, outputs)`` registered with ``@case``;
``pattern`` is a regex the error line must match and ``outputs`` the folders that must not
hold anything that looks finished afterwards.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from egopressdiff.cli.main import main
from egopressdiff.data import layout
from egopressdiff.evaluation.predictions import read_prediction

P = "p_001"
S1 = "p_001_press_palm_high_x5_right"  # 8 frames, frames 1-2 unannotated
S2 = "p_001_pinch-zoom_5x_right"  # 6 frames
MODEL_PRESET = "baseline-reg-tiny"  # per-frame baseline: builds and predicts in well under a second

CASES: dict[str, object] = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def assets(tmp_path_factory, make_sequence, fake_mano_dir):
    """A real-layout (non-synthetic) dataset, a saved model and valid predictions, built once."""
    from egopressdiff.config import load_run_config
    from egopressdiff.evaluation.predictions import write_prediction
    from egopressdiff.training.registry import build_model

    base = tmp_path_factory.mktemp("bad_inputs")
    data = base / "data"
    make_sequence(data, P, S1, 8, unannotated={1, 2})
    make_sequence(data, P, S2, 6, seed=1)
    model = base / "model"
    build_model(load_run_config(MODEL_PRESET)["model"]).save_pretrained(model)
    pred = base / "pred"
    for s, frames in ((S1, range(3, 9)), (S2, range(1, 7))):
        write_prediction(pred, P, s, np.array(list(frames)), np.zeros((len(frames), 224, 224), np.float32))
    return {"data": data, "model": model, "pred": pred, "mano": fake_mano_dir}


class Ctx:
    """Per-case scratch: fresh copies of the dataset / model / predictions on demand."""

    def __init__(self, tmp: Path, assets: dict, monkeypatch):
        self.tmp, self.assets, self.monkeypatch = tmp, assets, monkeypatch

    def copy(self, what: str) -> Path:
        dst = self.tmp / f"{what}_copy"
        if not dst.exists():
            shutil.copytree(self.assets[what], dst)
        return dst

    @property
    def data(self) -> Path:
        return self.assets["data"]

    @property
    def model(self) -> Path:
        return self.assets["model"]

    @property
    def pred(self) -> Path:
        return self.assets["pred"]

    def out(self, name: str = "out") -> Path:
        return self.tmp / name


def shard(root: Path, name: str, seq: str = S1) -> Path:
    return layout.shard_path(root, P, seq, name)


def rewrite_cell(root: Path, name: str, column: str, frame: int, value, seq: str = S1) -> Path:
    path = shard(root, name, seq)
    t = pq.read_table(path)
    vals = t.column(column).to_pylist()
    vals[t.column("frame").to_pylist().index(frame)] = value
    t = t.set_column(t.schema.get_field_index(column), column, pa.array(vals, t.schema.field(column).type))
    pq.write_table(t, path, row_group_size=4)
    return path


def cell(root: Path, name: str, column: str, frame: int, seq: str = S1):
    t = pq.read_table(shard(root, name, seq))
    return t.column(column)[t.column("frame").to_pylist().index(frame)].as_py()


def predict_argv(ctx, data=None, model=None, out=None, *extra):
    return ["predict", "--checkpoint", str(model or ctx.model), "--data", str(data or ctx.data), "--output",
            str(out or ctx.out()), "--split", "all", "--no-progress", *extra]


def evaluate_argv(ctx, pred=None, data=None, *extra):
    return ["evaluate", "--pred", str(pred or ctx.pred), "--data", str(data or ctx.data), "--no-progress", *extra]


def train_argv(ctx, data=None, out=None, *extra):
    return ["train", "--config", MODEL_PRESET, "--data", str(data or ctx.data), "--output", str(out or ctx.out()),
            "--max-steps", "1", "--no-progress", "--set", "train.val_every=0", *extra]


def unfinished(ctx, seq: str) -> list[Path]:
    """What predict must not leave when ``seq`` fails: its .npz and predict_info.json. Sequences
    finished before it (sorted order) are kept: they are complete, and a re-run skips them."""
    return [ctx.out() / P / f"{seq}.npz", ctx.out() / "predict_info.json"]


def write_npz(path: Path, **arrays) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


# ----------------------------------------------------------------------------- dataset roots
@case
def missing_root(ctx):
    return ["info", str(ctx.tmp / "nowhere")], r"does not exist.*file .*nowhere", []


@case
def empty_root(ctx):
    (ctx.tmp / "empty").mkdir()
    return ["info", str(ctx.tmp / "empty")], r"not an EgoPressure dataset root.*file .*empty", []


@case
def root_is_a_file(ctx):
    f = ctx.tmp / "root.txt"
    f.write_text("x")
    return ["info", str(f)], r"not a directory.*file .*root\.txt", []


@case
def missing_shard(ctx):
    data = ctx.copy("data")
    shard(data, layout.DEPTH_SHARD).unlink()
    return predict_argv(ctx, data), rf"missing shard \(sequence {S1}, file .*{layout.DEPTH_SHARD}\)", [ctx.out()]


@case
def corrupt_parquet(ctx):
    data = ctx.copy("data")
    shard(data, layout.ANNOTATION_SHARD).write_bytes(b"this is not parquet")
    return ["info", str(data)], rf"cannot read Parquet shard.*sequence {S1}, file .*annotation\.parquet", []


@case
def truncated_parquet(ctx):
    data = ctx.copy("data")
    p = shard(data, layout.PRESSURE_SHARD, S2)
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    return ["info", str(data)], rf"cannot read Parquet shard.*sequence {S2}, file .*pressure\.parquet", []


@case
def missing_calibration(ctx):
    data = ctx.copy("data")
    layout.k4a_calibration_path(data, P, S2).unlink()
    return predict_argv(ctx, data), rf"missing calibration file \(sequence {S2}, file .*k4a", [ctx.out()]


@case
def malformed_calibration_json(ctx):
    data = ctx.copy("data")
    layout.config_path(data, P, S1).write_text("{ not json")
    return ["info", str(data)], rf"not valid JSON.*sequence {S1}, file .*{S1}\.json", []


@case
def nan_in_calibration(ctx):
    data = ctx.copy("data")
    path = layout.k4a_calibration_path(data, P, S1)
    k4a = json.loads(path.read_text())
    k4a["CalibrationInformation"]["Cameras"][0]["Intrinsics"]["ModelParameters"][0] = float("nan")
    path.write_text(json.dumps(k4a))  # json writes NaN, as some tools do
    return predict_argv(ctx, data), rf"sequence {S1}.*file .*k4a_calibration\.json", [ctx.out()]


def _truncate_image(data: Path, name: str, column: str, frame: int) -> None:
    img = cell(data, name, column, frame)
    rewrite_cell(data, name, column, frame, {"bytes": img["bytes"][: len(img["bytes"]) // 2], "path": img["path"]})


@case
def truncated_jpeg(ctx):
    data = ctx.copy("data")
    _truncate_image(data, layout.COLOR_SHARD, "image", 5)
    return predict_argv(ctx, data), rf"corrupt image.*sequence {S1}, frame 5, file .*{layout.COLOR_SHARD}", unfinished(ctx, S1)


@case
def truncated_depth_png(ctx):
    data = ctx.copy("data")
    _truncate_image(data, layout.DEPTH_SHARD, "depth", 4)
    return predict_argv(ctx, data), rf"corrupt image.*sequence {S1}, frame 4, file .*{layout.DEPTH_SHARD}", unfinished(ctx, S1)


@case
def truncated_mask_png(ctx):
    data = ctx.copy("data")
    _truncate_image(data, layout.MASK_SHARD, "mask", 3)
    return ["info", str(data), "--check"], rf"corrupt image.*sequence {S1}, frame 3, file .*{layout.MASK_SHARD}", []


@case
def garbage_image_bytes(ctx):
    data = ctx.copy("data")
    rewrite_cell(data, layout.COLOR_SHARD, "image", 6, {"bytes": b"\xff\xd8\xff" + b"\x00" * 40, "path": "x.jpg"})
    return ["info", str(data), "--check"], rf"corrupt image.*sequence {S1}, frame 6, file .*{layout.COLOR_SHARD}", []


@case
def vertices_wrong_length(ctx):
    data = ctx.copy("data")
    rewrite_cell(data, layout.ANNOTATION_SHARD, "vertices", 5, [0.1] * (778 * 3 - 3))
    return predict_argv(ctx, data), rf"vertices has 2331 values, expected 2334.*sequence {S1}, frame 5", unfinished(ctx, S1)


@case
def pressure_map_wrong_length(ctx):
    data = ctx.copy("data")
    rewrite_cell(data, layout.PRESSURE_SHARD, "pressure_map", 4, [0.0] * 100)
    return ["info", str(data), "--full"], rf"pressure_map has 100 values.*sequence {S1}, frame 4", []


@case
def pressure_map_wrong_length_evaluate(ctx):
    data = ctx.copy("data")
    rewrite_cell(data, layout.PRESSURE_SHARD, "pressure_map", 3, [0.0] * 100)
    out = ctx.out("metrics.json")
    return (evaluate_argv(ctx, None, data, "--json", str(out)),
            rf"pressure_map has 100 values.*sequence {S1}, frame 3, file .*pressure\.parquet", [out])


@case
def force_wrong_length(ctx):
    data = ctx.copy("data")
    rewrite_cell(data, layout.PRESSURE_SHARD, "force", 7, [0.0] * 77)
    return ["info", str(data), "--check"], rf"force has 77 values.*sequence {S1}, frame 7", []


@case
def nan_vertices(ctx):
    data = ctx.copy("data")
    v = cell(data, layout.ANNOTATION_SHARD, "vertices", 6)
    v[10] = float("nan")
    rewrite_cell(data, layout.ANNOTATION_SHARD, "vertices", 6, v)
    return predict_argv(ctx, data), rf"vertices contains NaN or inf.*sequence {S1}, frame 6", unfinished(ctx, S1)


@case
def inf_vertices(ctx):
    data = ctx.copy("data")
    v = cell(data, layout.ANNOTATION_SHARD, "vertices", 3, S2)
    v[0] = float("inf")
    rewrite_cell(data, layout.ANNOTATION_SHARD, "vertices", 3, v, S2)
    return (train_argv(ctx, data), rf"vertices contains NaN or inf.*sequence {S2}, frame 3", [ctx.out()])


@case
def inf_camera_pose(ctx):
    data = ctx.copy("data")
    rewrite_cell(data, layout.ANNOTATION_SHARD, "ego_T", 4, [0.0, float("inf"), 0.5])
    return predict_argv(ctx, data), rf"ego_T contains NaN or inf.*sequence {S1}, frame 4", unfinished(ctx, S1)


@case
def nan_pressure(ctx):
    data = ctx.copy("data")
    m = cell(data, layout.PRESSURE_SHARD, "pressure_map", 5)
    m[1000] = float("nan")
    rewrite_cell(data, layout.PRESSURE_SHARD, "pressure_map", 5, m)
    return evaluate_argv(ctx, None, data), rf"pressure_map contains NaN or inf.*sequence {S1}, frame 5", []


@case
def nan_force(ctx):
    data = ctx.copy("data")
    f = cell(data, layout.PRESSURE_SHARD, "force", 8)
    f[3] = float("nan")
    rewrite_cell(data, layout.PRESSURE_SHARD, "force", 8, f)
    return ["info", str(data), "--check"], rf"force contains NaN or inf.*sequence {S1}, frame 8", []


@case
def unannotated_only_sequence(ctx, make_sequence=None):
    from conftest import make_sequence_files

    data = ctx.out("data_unannotated")
    make_sequence_files(data, P, S2, 4, unannotated={1, 2, 3, 4})
    return predict_argv(ctx, data), rf"no run of 1 consecutive annotated frames.*sequence {S2}", [ctx.out()]


@case
def sequence_shorter_than_a_clip(ctx):
    from conftest import make_sequence_files

    data = ctx.out("data_short")
    make_sequence_files(data, P, S2, 3)  # the baseline preset trains on clips of 4 frames
    return train_argv(ctx, data), rf"no run of 4 consecutive annotated frames.*sequence {S2}", [ctx.out()]


@case
def unsafe_sequence_name_in_dataset(ctx):
    data = ctx.copy("data")
    (data / "data" / P / "x y").mkdir()  # a directory name that is no valid sequence name
    return predict_argv(ctx, data), r"unsafe sequence name 'x y'.*file .*data/p_001/x y\)", [ctx.out()]


@case
def unsafe_participant_name_in_dataset(ctx):
    data = ctx.copy("data")
    os.rename(data / "data" / P, data / "data" / "-rf")
    return predict_argv(ctx, data), r"unsafe participant name '-rf'.*file .*data/-rf/", [ctx.out()]


# ----------------------------------------------------------------------------- configs
@case
def unknown_config_key(ctx):
    return train_argv(ctx, None, None, "--set", "train.learning_rate=1e-3"), r"unknown config key.*learning_rate", [
        ctx.out()]


@case
def wrong_config_type(ctx):
    return train_argv(ctx, None, None, "--set", "train.lr=fast"), r"train\.lr must be.*'fast'", [ctx.out()]


@case
def malformed_yaml(ctx):
    cfg = ctx.tmp / "run.yaml"
    cfg.write_text("model: {model_type: [unclosed\n")
    argv = train_argv(ctx)
    argv[argv.index(MODEL_PRESET)] = str(cfg)
    return argv, r"run\.yaml is not valid YAML", [ctx.out()]


@case
def unknown_config_section_in_yaml(ctx):
    cfg = ctx.tmp / "run.yaml"
    cfg.write_text("base: tiny\ntrainer: {lr: 1}\n")
    argv = train_argv(ctx)
    argv[argv.index(MODEL_PRESET)] = str(cfg)
    return argv, r"run\.yaml.*unknown config key 'trainer'", [ctx.out()]


@case
def yaml_with_python_tag(ctx):
    cfg = ctx.tmp / "evil.yaml"
    marker = ctx.tmp / "marker"
    cfg.write_text(f"base: tiny\ntrain: !!python/object/apply:os.system ['touch {marker}']\n")
    argv = train_argv(ctx)
    argv[argv.index(MODEL_PRESET)] = str(cfg)
    return argv, r"evil\.yaml is not valid YAML.*python/object", [ctx.out(), marker]


# ----------------------------------------------------------------------------- checkpoints
@case
def missing_checkpoint_folder(ctx):
    return predict_argv(ctx, None, ctx.tmp / "no_model"), r"checkpoint .*no_model not found", [ctx.out()]


@case
def checkpoint_without_safetensors(ctx):
    model = ctx.copy("model")
    for f in model.glob("*.safetensors"):
        f.unlink()
    return predict_argv(ctx, None, model), r"model_copy has no diffusion_pytorch_model\.safetensors", [ctx.out()]


@case
def corrupt_safetensors(ctx):
    model = ctx.copy("model")
    (model / "diffusion_pytorch_model.safetensors").write_bytes(b"\x00" * 64)
    return predict_argv(ctx, None, model), r"cannot read weights .*diffusion_pytorch_model\.safetensors", [ctx.out()]


@case
def pickle_only_checkpoint(ctx):
    """A folder with a PyTorch pickle (.bin) instead of safetensors: refused, the pickle never runs."""
    model = ctx.copy("model")
    (model / "diffusion_pytorch_model.safetensors").unlink()
    marker = ctx.tmp / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (model / "pytorch_model.bin").write_bytes(pickle.dumps({"w": Evil()}))
    return predict_argv(ctx, None, model), r"has no diffusion_pytorch_model\.safetensors", [ctx.out(), marker]


@case
def checkpoint_of_another_model_type(ctx):
    model = ctx.copy("model")
    (model / "config.json").write_text(json.dumps({"_class_name": "UNetSpatioTemporalConditionModel"}))
    return predict_argv(ctx, None, model), r"config\.json has no model_type: not an egopressdiff model", [ctx.out()]


@case
def checkpoint_unknown_model_type(ctx):
    model = ctx.copy("model")
    cfg = json.loads((model / "config.json").read_text())
    cfg["model_type"] = "resnet"
    (model / "config.json").write_text(json.dumps(cfg))
    return predict_argv(ctx, None, model), r"unknown model_type 'resnet'.*known", [ctx.out()]


@case
def checkpoint_config_not_json(ctx):
    model = ctx.copy("model")
    (model / "config.json").write_text("{{{")
    return predict_argv(ctx, None, model), r"cannot read .*config\.json", [ctx.out()]


@case
def checkpoint_path_is_a_file(ctx):
    f = ctx.tmp / "weights.safetensors"
    f.write_bytes(b"x")
    return predict_argv(ctx, None, f), r"checkpoint .*weights\.safetensors is a file", [ctx.out()]


@case
def resume_without_run(ctx):
    return ["train", "--output", str(ctx.out()), "--resume", "--no-progress"], r"cannot resume: .*config\.yaml", [
        ctx.out()]


# ----------------------------------------------------------------------------- prediction files
def _pred_with(ctx, seq=S1, **arrays) -> Path:
    pred = ctx.copy("pred")
    write_npz(pred / P / f"{seq}.npz", **arrays)
    return pred


@case
def prediction_folder_missing(ctx):
    return evaluate_argv(ctx, ctx.tmp / "no_pred"), r"prediction folder does not exist.*no_pred", []


@case
def prediction_missing_frames(ctx):
    pred = _pred_with(ctx, frame=np.arange(3, 7), pressure_kpa=np.zeros((4, 224, 224), np.float32))
    return evaluate_argv(ctx, pred), rf"missing 2 ground-truth frame.*sequence {S1}, frame 7, file .*{S1}\.npz", []


@case
def prediction_wrong_shape(ctx):
    pred = _pred_with(ctx, frame=np.arange(3, 9), pressure_kpa=np.zeros((6, 112, 112), np.float32))
    return evaluate_argv(ctx, pred), rf"must have shape \(T, 224, 224\), got \(6, 112, 112\).*{S1}\.npz", []


@case
def prediction_nan(ctx):
    p = np.zeros((6, 224, 224), np.float32)
    p[2, 5, 5] = np.nan
    pred = _pred_with(ctx, frame=np.arange(3, 9), pressure_kpa=p)
    return evaluate_argv(ctx, pred), rf"holds NaN or inf.*sequence {S1}, frame 5, file .*{S1}\.npz", []


@case
def prediction_negative(ctx):
    p = np.zeros((6, 224, 224), np.float32)
    p[4, 0, 0] = -1
    pred = _pred_with(ctx, frame=np.arange(3, 9), pressure_kpa=p)
    render_out = ctx.out("render")
    return (["render", "--pred", str(pred), "--data", str(ctx.data), "--output", str(render_out), "--no-progress"],
            rf"negative pressure.*sequence {S1}, frame 7, file .*{S1}\.npz", [render_out])


@case
def prediction_missing_key(ctx):
    pred = _pred_with(ctx, frame=np.arange(3, 9))
    return evaluate_argv(ctx, pred), rf"lacks key\(s\) \['pressure_kpa'\].*{S1}\.npz", []


@case
def prediction_not_a_zip(ctx):
    pred = ctx.copy("pred")
    (pred / P / f"{S2}.npz").write_bytes(b"garbage")
    return evaluate_argv(ctx, pred), rf"cannot read prediction file: not an .npz \(zip\) archive.*sequence {S2}, file .*{S2}\.npz", []


@case
def prediction_with_pickled_object_array(ctx):
    marker = ctx.tmp / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    pred = _pred_with(ctx, frame=np.arange(3, 9), pressure_kpa=np.array([Evil()], dtype=object))
    return evaluate_argv(ctx, pred), rf"cannot read prediction file.*{S1}\.npz", [marker]


@case
def predict_info_escaping_name(ctx):
    pred = ctx.copy("pred")
    (pred / "predict_info.json").write_text(json.dumps({"sequences": [f"{P}/{S1}", "../../x"]}))
    return evaluate_argv(ctx, pred), r"predict_info\.json lists '\.\./\.\./x'.*unsafe.*file .*predict_info\.json", []


@case
def predict_info_absolute_name(ctx):
    pred = ctx.copy("pred")
    (pred / "predict_info.json").write_text(json.dumps({"sequences": ["/etc/passwd"]}))
    render_out = ctx.out("render")
    return (["render", "--pred", str(pred), "--data", str(ctx.data), "--output", str(render_out), "--no-progress"],
            r"predict_info\.json lists '/etc/passwd'", [render_out])


@case
def prediction_for_unknown_sequence(ctx):
    pred = ctx.copy("pred")
    write_npz(pred / P / "p_001_ghost_right.npz", frame=np.arange(1, 3), pressure_kpa=np.zeros((2, 224, 224),
                                                                                                np.float32))
    (pred / "predict_info.json").unlink(missing_ok=True)
    return evaluate_argv(ctx, pred), r"p_001/p_001_ghost_right, which is not in the dataset.*file .*p_001_ghost_right\.npz", []


# ----------------------------------------------------------------------------- MANO
@case
def malformed_mano_uv_obj(ctx):
    mano = ctx.tmp / "mano"
    mano.mkdir()
    (mano / "MANO_UV_right.obj").write_text("v 0 0 0\nv 1 0\nf 1/1 2/2 3/3\n")
    ctx.monkeypatch.setenv("EGOPRESSDIFF_MANO_DIR", str(mano))
    return evaluate_argv(ctx), r"malformed OBJ line 2: a vertex needs 3 coordinates.*MANO_UV_right\.obj", []


@case
def missing_mano_dir_for_real_data(ctx):
    ctx.monkeypatch.delenv("EGOPRESSDIFF_MANO_DIR", raising=False)
    ctx.monkeypatch.delenv("EGOPRESSURE_MANO_PATH", raising=False)
    return (predict_argv(ctx), r"no MANO folder configured.*mano\.is\.tue\.mpg\.de.*MANO_UV_right\.obj.*"
            r"EGOPRESSDIFF_MANO_DIR", [ctx.out()])


@case
def mano_dir_without_uv_files(ctx):
    (ctx.tmp / "mano_empty").mkdir()
    ctx.monkeypatch.setenv("EGOPRESSDIFF_MANO_DIR", str(ctx.tmp / "mano_empty"))
    return evaluate_argv(ctx), r"mano_empty/MANO_UV_right\.obj not found.*EGOPRESSDIFF_MANO_DIR", []


# ----------------------------------------------------------------------------- output paths, options
def _a_file(ctx, name="taken") -> Path:
    f = ctx.tmp / name
    f.write_text("not a folder")
    return f


@case
def synth_output_is_a_file(ctx):
    return ["synth", str(_a_file(ctx)), "--frames", "2", "--no-progress"], r"taken is a file", []


@case
def predict_output_is_a_file(ctx):
    return predict_argv(ctx, None, None, _a_file(ctx)), r"output path .*taken is a file", []


@case
def render_output_is_a_file(ctx):
    return (["render", "--pred", str(ctx.pred), "--data", str(ctx.data), "--output", str(_a_file(ctx))],
            r"output path .*taken is a file", [])


@case
def train_output_is_a_file(ctx):
    return train_argv(ctx, None, _a_file(ctx)), r"output path .*taken is a file", []


@case
def evaluate_json_is_a_folder(ctx):
    return evaluate_argv(ctx, None, None, "--json", str(ctx.tmp)), r"--json .* is a directory", []


@case
def synth_existing_output(ctx):
    out = ctx.out("synth_out")
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    return ["synth", str(out), "--frames", "2", "--no-progress"], r"synth_out exists and is not empty.*--overwrite", []


@case
def train_existing_output(ctx):
    out = ctx.out("run")
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    return train_argv(ctx, None, out), r"run already exists and is not empty.*--overwrite", []


@case
def render_existing_output(ctx):
    out = ctx.out("render")
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    return (["render", "--pred", str(ctx.pred), "--data", str(ctx.data), "--output", str(out)],
            r"render exists and is not empty.*--overwrite", [])


@case
def synth_zero_frames(ctx):
    return ["synth", str(ctx.out("s")), "--frames", "0"], r"--frames must be between 1", [ctx.out("s")]


@case
def predict_zero_samples(ctx):
    return predict_argv(ctx, None, None, None, "--samples", "0"), r"--samples must be >= 1", [ctx.out()]


@case
def predict_overlap_not_below_window(ctx):
    return (predict_argv(ctx, None, None, None, "--window", "3", "--overlap", "3"),
            r"--overlap 3 must be >= 0 and smaller than --window 3", [ctx.out()])


@case
def predict_unknown_sequence(ctx):
    return (predict_argv(ctx, None, None, None, "--sequences", "p_001_nope_right"),
            r"sequence p_001_nope_right is not among the selected participants", [ctx.out()])


@case
def render_zero_frames(ctx):
    return (["render", "--pred", str(ctx.pred), "--data", str(ctx.data), "--output", str(ctx.out("r")),
             "--max-frames", "0"], r"--max-frames must be >= 1", [ctx.out("r")])


@case
def train_negative_max_steps(ctx):
    return train_argv(ctx, None, None, "--max-steps", "-3"), r"--max-steps must be > 0", [ctx.out()]


# ----------------------------------------------------------------------------- the checks
LOOKS_COMPLETE = ("predict_info.json", "index.html", "train_summary.json", "metrics.json", "config.json")


def _complete_looking(path: Path) -> list[str]:
    """Files under ``path`` that a user would take for finished output."""
    if not path.exists():
        return []
    if path.is_file():
        return [str(path)]
    found = []
    for f in path.rglob("*"):
        rel = f.relative_to(path)
        if any(part.startswith(".") for part in rel.parts):
            continue  # temporaries of atomic writes
        if f.suffix in (".npz", ".mp4", ".gif", ".png", ".parquet") or f.name in LOOKS_COMPLETE or f.name == "model":
            found.append(str(rel))
    return found


def _shown_lines(text: str) -> list[str]:
    """Lines as a terminal shows them: a progress bar redrawn with carriage returns is overwritten."""
    return [seg for ln in text.split("\n") if (seg := ln.split("\r")[-1].strip())]


def test_there_are_enough_cases():
    assert len(CASES) >= 30


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(name, assets, tmp_path, monkeypatch, capsys):
    argv, pattern, outputs = CASES[name](Ctx(tmp_path, assets, monkeypatch))
    before = {p: _complete_looking(p) for p in outputs}
    capsys.readouterr()
    rc = main(argv)
    out, err = capsys.readouterr()
    lines = _shown_lines(err)
    assert rc == 2, f"exit code {rc}; stderr: {err}"
    assert len(lines) == 1, f"expected one line on stderr, got: {err!r}"
    line = lines[0]
    assert line.startswith(f"egopressdiff {argv[0]}: error: "), line
    assert "Traceback" not in err and "Traceback" not in out
    import re

    assert re.search(pattern, line), f"{pattern!r} not found in {line!r}"
    for p in outputs:
        assert _complete_looking(p) == before[p], f"{p} holds output that looks complete: {_complete_looking(p)}"
    # whatever prediction file a failed command did leave under its final name is complete and valid
    for f in tmp_path.glob("out/*/*.npz"):
        read_prediction(f)


@pytest.mark.parametrize("argv_of", [
    lambda tmp, a: ["info", str(tmp / "missing_root")],
    lambda tmp, a: ["predict", "--checkpoint", str(a["model"]), "--data", str(a["data"]), "--output",
                    str(tmp / "o"), "--window", "2", "--overlap", "5"],
], ids=["missing_root", "bad_overlap"])
def test_no_traceback_reaches_the_user(argv_of, assets, tmp_path):
    """As a real process (console entry point): exit 2, one line, no traceback."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("EGOPRESSDIFF_DEBUG", None)
    proc = subprocess.run([sys.executable, "-m", "egopressdiff", *argv_of(tmp_path, assets)], capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = _shown_lines(proc.stderr)
    assert len(lines) == 1 and "error:" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (tmp_path / "o").exists()


def test_debug_flag_shows_the_traceback(assets, tmp_path):
    """--debug is the one way to get the traceback of an input error (for bug reports)."""
    with pytest.raises(Exception, match="does not exist"):
        main(["--debug", "info", str(tmp_path / "nowhere")])


def test_a_closed_pipe_ends_quietly_with_the_files_written(assets, tmp_path):
    """`egopressdiff evaluate ... --json M | head -0`: the reader is gone before anything is printed. No
    traceback, exit 141, and the metrics file is there all the same."""
    metrics = tmp_path / "m.json"
    r, w = os.pipe()
    os.close(r)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("EGOPRESSDIFF_DEBUG", None)
    try:
        res = subprocess.run([sys.executable, "-m", "egopressdiff", "evaluate", "--pred", str(assets["pred"]),
                              "--data", str(assets["data"]), "--json", str(metrics), "--no-progress"],
                             stdout=w, stderr=subprocess.PIPE, text=True, env=env, timeout=120)
    finally:
        os.close(w)
    assert res.returncode == 141, res.stderr
    assert "Traceback" not in res.stderr and "BrokenPipe" not in res.stderr
    assert "volumetric_iou" in json.loads(metrics.read_text())
