"""The PressureFormer-style baseline: vertex queries, the scatter onto the atlas, training, save/load,
``train`` / ``predict`` on the command line and the per-frame pipeline."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from egopressdiff.baselines import PressureFormerBaseline, PressureFormerConfig
from egopressdiff.baselines.pressureformer import (
    crop_positions,
    mesh_hops,
    query_vertices,
    token_positions,
    uv_grid_positions,
)
from egopressdiff.data.hand import synthetic_atlas
from egopressdiff.errors import CheckpointError, ConfigError

TINY = {"width": 8, "d_model": 32, "num_heads": 2, "num_layers": 1, "ffn_dim": 32, "num_queries": 64,
        "uv_out_size": 32, "refine_width": 8, "refine_blocks": 1, "crop_size": 32, "uv_cond_size": 16,
        "clip_length": 2}
ATLAS_MASK = torch.from_numpy(synthetic_atlas("right").mask(224))


def make_model(space="image", **kw):
    name = "baseline-pformer-tiny-uv" if space == "uv" else "baseline-pformer-tiny"
    return PressureFormerBaseline.from_config({"name": name, **TINY, **kw})


def make_batch(b=1, n=2, s=32, u=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    pressure = torch.zeros(b, n, 224, 224)
    pressure[:, :, 40:100, 60:120] = 12.0
    pressure[:, :, 150:170, 30:60] = 3.0
    mask = ATLAS_MASK[None].expand(b, -1, -1).clone()
    return {"rgb": torch.rand(b, n, 3, s, s, generator=g), "depth": torch.rand(b, n, 1, s, s, generator=g) * 2 - 1,
            "pose_map": torch.rand(b, n, 3, s, s, generator=g),
            "vertices": torch.randn(b, n, 778, 3, generator=g) * 0.03 + torch.tensor([0.0, 0.0, 0.4]),
            "pressure": pressure * mask[:, None], "uv_mask": mask, "uv_cond": torch.rand(b, n, 7, u, u, generator=g)}


@pytest.mark.parametrize("space", ["image", "uv"])
def test_shapes_masking_and_training_lowers_loss(space):
    torch.manual_seed(0)
    model = make_model(space)
    batch = make_batch()
    out = model.predict(batch)["pressure_kpa"]
    assert out.shape == (1, 2, 224, 224) and (out >= 0).all()
    assert (out[:, :, ATLAS_MASK == 0] == 0).all()  # masked by the UV mask
    opt = torch.optim.Adam(model.trainable_parameters(), lr=1e-2)
    first = model.training_loss(batch).item()
    for _ in range(16):
        loss = model.training_loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert model.training_loss(batch).item() < 0.8 * first
    trained = model.predict(batch)["pressure_kpa"]
    assert set(torch.unique(trained).tolist()) <= {0.0, 0.75, 1.5, 3.0, 6.0, 12.0, 24.0, 48.0, 80.0}  # midpoints
    assert (trained[:, :, 40:100, 60:120] > 0).float().mean() > 0.5  # it learned where the pressure is
    req = model.data_requirements()
    assert req == {"clip_length": 2, "crop_size": 32, "uv_conditioning": space == "uv",
                   "uv_cond_size": 16 if space == "uv" else None}


def test_gradients_reach_the_cross_attention_and_the_vertex_queries():
    torch.manual_seed(0)
    model = make_model()
    model.training_loss(make_batch()).backward()
    layer = model.decoder[0]
    for p in (layer.multihead_attn.in_proj_weight, layer.self_attn.in_proj_weight, model.fine.to_kv.weight,
              model.aligned.weight, model.feature_encoder.proj.weight, model.vertex_tokens.geometry[0].weight,
              model.uv_refiner.head.weight):
        assert p.grad is not None and p.grad.abs().sum() > 0
    learns = model.vertex_tokens.embedding.grad.abs().sum(1) > 0
    queries = torch.zeros(778, dtype=torch.bool)
    queries[model.query_index] = True
    on_map = torch.zeros(778, dtype=torch.bool)  # vertices some texel of the 32x32 map mixes in
    on_map[model.texel_vertices[model.texel_bary > 0]] = True
    assert learns[queries].all()  # every query vertex's embedding learns (through the decoder)
    assert learns[on_map & ~queries].all()  # and every other vertex on the map (through the upsampling)
    assert (on_map & ~queries).sum() > 300


@pytest.mark.parametrize("space", ["image", "uv"])
def test_a_query_reads_the_image_features(space):
    """The only path from the image inputs to a vertex is the cross-attention: changing them changes every query."""
    torch.manual_seed(0)
    model = make_model(space).eval()
    a, b = make_batch(seed=1), make_batch(seed=1)
    key = "rgb" if space == "image" else "uv_cond"
    b[key] = torch.rand_like(b[key])
    with torch.no_grad():
        fa, fb = model.vertex_features(a)[0], model.vertex_features(b)[0]
    moved = (fa - fb).abs().amax(-1)[:, model.query_index]
    assert (moved > 1e-4).all()
    with torch.no_grad():
        assert not torch.equal(model._outputs(a)[0], model._outputs(b)[0])  # and so the pressure logits


def test_ablation_switches_remove_inputs():
    torch.manual_seed(0)
    model = make_model(use_depth=False, use_pose=False, use_vertices=False).eval()
    assert model.vertex_tokens.geometry is None
    a, b = make_batch(seed=0), make_batch(seed=0)
    b["depth"] = torch.rand_like(b["depth"])
    b["pose_map"] = torch.rand_like(b["pose_map"])
    b["vertices"] = b["vertices"] + 0.05
    with torch.no_grad():
        assert torch.equal(model._outputs(a)[0], model._outputs(b)[0])
    with_vertices = make_model().eval()
    with torch.no_grad():
        assert not torch.equal(with_vertices._outputs(a)[0], with_vertices._outputs(b)[0])


def test_scatter_is_the_atlas_barycentric_interpolation():
    model = make_model(uv_out_size=40)
    atlas = synthetic_atlas("right")
    values = np.random.default_rng(0).normal(size=(778, 3)).astype(np.float32)
    ours = model.scatter_to_uv(torch.from_numpy(values)[None])[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(ours, atlas.interpolate(values, 40), rtol=1e-5, atol=1e-5)
    # the atlas mask and the UV coordinates the refiner sees, at the same resolution
    assert torch.equal(model.uv_layout[0, 0], torch.from_numpy(atlas.mask(40)))
    assert torch.equal(model.uv_layout[0, 1:], uv_grid_positions(40))


def test_coarse_queries_cover_the_mesh_and_upsample_to_every_vertex():
    atlas = synthetic_atlas("right")
    hops = mesh_hops(atlas)
    queries, nearest, weights = query_vertices(hops, 48)
    assert len(set(queries.tolist())) == 48
    parts = hops[0] < 778  # the hand's separate parts are 778 hops apart
    part_of = np.unique(hops < 778, axis=0, return_inverse=True)[1].reshape(-1)
    assert parts.sum() < 778 and set(part_of[queries]) == set(part_of)  # every part has a query
    np.testing.assert_allclose(weights.sum(1), 1.0, rtol=1e-6)
    assert np.array_equal(queries[nearest[queries, 0]], queries) and np.all(weights[queries, 0] == 1)
    # a vertex takes its queries from its own part of the hand, nearest first
    d = np.take_along_axis(hops[:, queries], nearest, axis=1)
    assert np.all(d < 778) and np.all(np.diff(d, axis=1) >= 0)
    every = PressureFormerBaseline.from_config({"name": "baseline-pformer-tiny", **TINY, "num_queries": 778})
    assert every.upsample_index is None and torch.equal(every.query_index, torch.arange(778))


def test_token_and_crop_positions_share_the_inputs_coordinates():
    # a token's position is the mean of its pixels' (image) or texels' (uv) centres
    s, g = 4, 8
    pix = (torch.arange(g * s) + 0.5) / (g * s) * 2 - 1
    img = token_positions(g, s, "image").view(g, g, 2)
    torch.testing.assert_close(img[0, :, 0], pix.view(g, s).mean(1))
    tex = uv_grid_positions(g * s)[0, 0]
    uv = token_positions(g, s, "uv").view(g, g, 2)
    torch.testing.assert_close(uv[0, :, 0], tex.view(g, s).mean(1))
    torch.testing.assert_close(uv[:, 0, 1], tex.view(g, s).mean(1))
    # a vertex's crop position is where the processor's crop shows it (one frame: no smoothing)
    from egopressdiff.data.calibration import ColorIntrinsics, project
    from egopressdiff.data.processor import hand_crop_boxes

    rng = np.random.default_rng(0)
    verts = (rng.normal(size=(1, 778, 3)) * [0.03, 0.02, 0.02] + [0.05, -0.02, 0.45]).astype(np.float32)
    intr = ColorIntrinsics(500.0, 500.0, 320.0, 240.0, 640, 480)
    box = hand_crop_boxes(verts.astype(np.float64), intr)[0][0]
    px = project(verts[0].astype(np.float64), intr)
    side = box[2] - box[0]
    expected = (px - box[:2] + 0.5) / side * 2 - 1  # pixel edges: [-1, 1] spans the crop
    ours = crop_positions(torch.from_numpy(verts))[0].numpy()
    assert np.abs(ours - expected).max() < 4 / side  # the box is rounded to whole pixels


def test_locality_bias_points_each_query_at_its_own_place():
    torch.manual_seed(0)
    model = make_model("uv")  # uv_cond 16, token stride 4: a 4x4 token grid
    pos = token_positions(4, 4, "uv")
    bias = model.locality_bias(None, pos, 4)  # uv: fixed per vertex
    assert bias.shape == (64, 16) and (bias <= 0).all()
    nearest = torch.cdist(model.vertex_tokens.vertex_uv[model.query_index], pos).argmin(1)
    assert torch.equal(bias.argmax(1), nearest)
    image = make_model()
    verts = make_batch()["vertices"].flatten(0, 1)
    per_frame = image.locality_bias(verts, token_positions(8, 4, "image"), 8)
    assert per_frame.shape == (2, 64, 64)  # the crop positions move with the hand
    assert make_model(use_vertices=False).head_locality is None  # image space, no mesh: nowhere to look first
    assert make_model(locality=0.0).head_locality is None
    assert make_model("uv", use_vertices=False).head_locality is not None
    # per head: head 0 the most local; the mask broadcasts over frames in uv space
    torch.testing.assert_close(model.head_locality, torch.tensor([1.0, 0.25]))
    mask = model.attention_mask(bias, 6, torch.float32)
    assert mask.shape == (1, 2, 64, 16) and torch.equal(mask[0, 1], 0.25 * bias)


def test_vertex_aligned_features_are_read_where_the_vertex_is():
    """A map holding its own column and row index, sampled at the vertices, gives each vertex's pixel / texel."""
    verts = make_batch()["vertices"].flatten(0, 1)
    for space, size in (("uv", 16), ("image", 32)):
        model = make_model(space)
        rows, cols = torch.meshgrid(torch.arange(size * 1.0), torch.arange(size * 1.0), indexing="ij")
        fmap = torch.stack([cols, rows])[None].expand(2, -1, -1, -1)
        got = model.sample_at_vertices(fmap, verts)  # (2, 778, 2)
        p = model.vertex_positions(verts).expand(2, -1, -1)
        if space == "uv":  # texel centres: column = u * (U - 1)
            want = (p + 1) / 2 * (size - 1)
            inside = torch.ones(p.shape[:-1], dtype=torch.bool)
        else:  # pixel areas: [-1, 1] spans the crop's edges
            want = (p + 1) / 2 * size - 0.5
            inside = ((want >= 0) & (want <= size - 1)).all(-1)
        assert inside.float().mean() > 0.9
        torch.testing.assert_close(got[inside], want[inside], atol=1e-4, rtol=0)
    assert make_model(use_vertices=False).aligned is None and make_model(vertex_aligned=False).aligned is None


def test_save_load_identical_outputs(tmp_path):
    torch.manual_seed(1)
    model = make_model("uv", decode="expectation")
    batch = make_batch(seed=3)
    before = model.predict(batch)["pressure_kpa"]
    model.save_pretrained(tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["model_type"] == "pressureformer_baseline" and cfg["_class_name"] == "PressureFormerBaseline"
    assert cfg["settings"]["decode"] == "expectation" and cfg["settings"]["num_queries"] == 64
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "diffusion_pytorch_model.safetensors"]
    loaded = PressureFormerBaseline.from_pretrained(tmp_path / "m")
    assert torch.equal(loaded.predict(batch)["pressure_kpa"], before)
    from diffusers.models.modeling_utils import ModelMixin

    from egopressdiff.training.registry import load_model

    by_diffusers = ModelMixin.from_pretrained.__func__(PressureFormerBaseline, tmp_path / "m")
    assert torch.equal(by_diffusers.predict(batch)["pressure_kpa"], before)
    by_registry = load_model(tmp_path / "m")
    assert type(by_registry) is PressureFormerBaseline
    assert torch.equal(by_registry.predict(batch)["pressure_kpa"], before)
    assert loaded.parameter_counts() == model.parameter_counts()
    # the atlas tables are rebuilt, not saved
    from safetensors.torch import load_file

    saved = load_file(str(tmp_path / "m" / "diffusion_pytorch_model.safetensors"))
    assert not any(k.startswith(("texel_", "uv_layout", "atlas_mask", "query_index", "upsample_")) for k in saved)


def test_from_pretrained_refuses_other_folders(tmp_path):
    with pytest.raises(CheckpointError):
        PressureFormerBaseline.from_pretrained(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "perframe_baseline"}))
    with pytest.raises(CheckpointError, match="perframe_baseline"):
        PressureFormerBaseline.from_pretrained(other)
    model = make_model()
    model.save_pretrained(tmp_path / "m")
    (tmp_path / "m" / "diffusion_pytorch_model.safetensors").write_bytes(b"junk")
    with pytest.raises(CheckpointError):
        PressureFormerBaseline.from_pretrained(tmp_path / "m")
    model.save_pretrained(tmp_path / "m2")
    cfg = json.loads((tmp_path / "m2" / "config.json").read_text())
    cfg["settings"]["d_model"] = 48  # weights of another size
    (tmp_path / "m2" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="do not fit"):
        PressureFormerBaseline.from_pretrained(tmp_path / "m2")


def test_data_of_another_atlas_is_refused():
    batch = make_batch()
    square = torch.zeros(1, 224, 224)
    square[:, 20:200, 20:200] = 1
    batch["uv_mask"] = square
    with pytest.raises(ConfigError, match="'synthetic' atlas"):
        make_model().predict(batch)
    del batch["uv_cond"]
    batch["uv_mask"] = ATLAS_MASK[None].clone()
    with pytest.raises(ConfigError, match="uv_cond"):
        make_model("uv").predict(batch)


def test_config_presets_and_errors(tmp_path):
    for name in PressureFormerConfig.PRESETS:
        cfg = PressureFormerConfig.preset(name)
        assert PressureFormerConfig.from_dict(cfg.to_dict()) == cfg
    full = PressureFormerConfig.preset("baseline-pformer")
    assert full.num_queries == 778 and full.crop_size == 256 and full.uv_atlas == "mano"
    assert PressureFormerConfig.preset("baseline-pformer-tiny-uv").cond_space == "uv"
    bad = [({"bogus": 1}, "bogus"), ({"cond_space": "video"}, "cond_space"), ({"width": "wide"}, "width"),
           ({"token_stride": 3}, "power of 2"), ({"crop_size": 30}, "divisible"), ({"d_model": 30}, "num_heads"),
           ({"num_queries": 1000}, "num_queries"), ({"num_queries": 0}, "num_queries"),
           ({"uv_atlas": "smplx"}, "uv_atlas"), ({"decode": "mode"}, "decode"), ({"soft_label_eps": 0.5}, "eps"),
           ({"model_type": "perframe_baseline"}, "model_type"), ({"use_depth": 1}, "use_depth")]
    for fields, match in bad:
        with pytest.raises(ConfigError, match=match):
            PressureFormerConfig.from_dict(fields)
    with pytest.raises(ConfigError):
        PressureFormerBaseline.from_config("no-such-preset")
    path = tmp_path / "c.yaml"
    path.write_text("name: baseline-pformer-tiny-uv\nd_model: 32\nnum_heads: 2\n")
    m = PressureFormerBaseline.from_config(str(path))
    assert m.config.cond_space == "uv" and m.config.d_model == 32
    # the run presets build the model
    from egopressdiff.config import load_run_config
    from egopressdiff.training.registry import build_model

    for name in ("baseline-pformer-tiny", "baseline-pformer-tiny-uv"):
        assert type(build_model(load_run_config(name)["model"])) is PressureFormerBaseline
    with pytest.raises(ConfigError, match="num_heads"):
        build_model(load_run_config("baseline-pformer-tiny", ["model.num_heads=5"])["model"])


def _recording(root, participant, sequence):
    from egopressdiff.data.reader import EgoPressureReader

    r = EgoPressureReader(root)
    frames = r.predictable_frames(participant, sequence)
    anns = [r.load_annotation(participant, sequence, int(f)) for f in frames]
    return {"rgb": np.stack([r.load_rgb(participant, sequence, int(f)) for f in frames]),
            "depth": np.stack([r.load_depth_raw(participant, sequence, int(f)) for f in frames]),
            "vertices": np.stack([a.vertices for a in anns]), "joints": np.stack([a.joints for a in anns]),
            "ego_R": np.stack([a.ego_R for a in anns]), "ego_T": np.stack([a.ego_T for a in anns]),
            "intrinsics": r.intrinsics(participant, sequence),
            "depth_calibration": r.depth_calibration(participant, sequence), "frames": frames}


def test_train_and_predict_on_the_command_line_and_through_the_pipeline(synth_root, tmp_path, capsys):
    from egopressdiff.cli.main import main
    from egopressdiff.data.reader import EgoPressureReader
    from egopressdiff.evaluation.predictions import prediction_path, read_prediction
    from egopressdiff.pipelines import EgoPressDiffPipeline, PerFrameBaselinePipeline, load_pipeline
    from egopressdiff.training.registry import load_model

    run, pred = tmp_path / "run", tmp_path / "pred"
    sets = [f"model.{k}={v}" for k, v in TINY.items()] + [
        "data.stride=4", "train.batch_size=2", "train.checkpoint_every=2", "train.val_every=2", "train.val_batches=1"]
    args = ["train", "--config", "baseline-pformer-tiny-uv", "--data", str(synth_root), "--output", str(run),
            "--max-steps", "3", "--no-progress"]
    assert main(args + [x for s in sets for x in ("--set", s)]) == 0, capsys.readouterr().err
    summary = json.loads((run / "train_summary.json").read_text())
    assert summary["steps"] == 3 and all(np.isfinite(v) for _, v in summary["val_losses"])
    model = load_model(run / "model")
    assert type(model) is PressureFormerBaseline and model.config.cond_space == "uv"

    assert main(["predict", "--checkpoint", str(run), "--data", str(synth_root), "--output", str(pred),
                 "--split", "all", "--no-progress"]) == 0, capsys.readouterr().err
    reader = EgoPressureReader(synth_root)
    p = reader.participants()[0]
    s = reader.sequences(p)[0]
    on_disk = read_prediction(prediction_path(pred, p, s))
    assert on_disk.pressure_kpa.shape == (len(on_disk.frame), 224, 224) and on_disk.pressure_kpa.min() >= 0
    assert np.all(on_disk.pressure_kpa[:, ATLAS_MASK.numpy() == 0] == 0)

    # the in-memory pipeline gives what `predict` wrote
    pipe = PerFrameBaselinePipeline.from_pretrained(run)
    assert isinstance(load_pipeline(run / "model"), PerFrameBaselinePipeline)
    rec = _recording(synth_root, p, s)
    out = pipe(rec["rgb"], rec["depth"], rec["vertices"], rec["joints"], rec["intrinsics"], ego_R=rec["ego_R"],
               ego_T=rec["ego_T"], depth_calibration=rec["depth_calibration"], seed=3, num_inference_steps=5)
    np.testing.assert_array_equal(on_disk.frame, rec["frames"])
    np.testing.assert_allclose(out.pressure_kpa, on_disk.pressure_kpa, atol=1e-5)
    assert out.pressure_std_kpa is None
    with pytest.raises(CheckpointError, match="pressureformer_baseline"):
        EgoPressDiffPipeline.from_pretrained(run)
