"""Per-frame baselines: quantisation, soft targets, decoding, training, save/load, predict."""

import json

import pytest
import torch

from egopressdiff.baselines import (
    BIN_MIDPOINTS_KPA,
    PerFrameBaseline,
    PerFrameBaselineConfig,
    decode_classes,
    quantize_pressure,
    soft_targets,
)
from egopressdiff.errors import CheckpointError, ConfigError

TINY = {"width": 8, "hidden_dim": 32, "vertex_hidden": 16, "uv_out_size": 28, "crop_size": 32,
        "uv_cond_size": 16, "clip_length": 2}


def make_batch(b=1, n=2, s=32, u=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    pressure = torch.zeros(b, n, 224, 224)
    pressure[:, :, 40:100, 60:120] = 12.0
    pressure[:, :, 150:170, 30:60] = 3.0
    mask = torch.zeros(b, 224, 224)
    mask[:, 20:200, 20:200] = 1
    return {"rgb": torch.rand(b, n, 3, s, s, generator=g), "depth": torch.rand(b, n, 1, s, s, generator=g) * 2 - 1,
            "depth_valid": torch.ones(b, n, 1, s, s), "pose_map": torch.rand(b, n, 3, s, s, generator=g),
            "vertices": torch.randn(b, n, 778, 3, generator=g) * 0.03 + torch.tensor([0.0, 0.0, 0.4]),
            "pressure": pressure * mask[:, None], "uv_mask": mask,
            "uv_cond": torch.rand(b, n, 7, u, u, generator=g)}


def test_quantisation_on_known_values():
    kpa = torch.tensor([-1.0, 0.0, 0.49, 0.5, 0.99, 1.0, 1.5, 2.0, 3.9, 4.0, 8.0, 15.9, 16.0, 32.0, 63.9, 64.0, 500.0])
    expected = [0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 5, 5, 6, 7, 7, 8, 8]
    assert quantize_pressure(kpa).tolist() == expected


def test_soft_targets_sum_to_one_and_spread_to_neighbours():
    t = soft_targets(torch.arange(9), eps=0.1)
    torch.testing.assert_close(t.sum(-1), torch.ones(9))
    assert t[4].tolist() == pytest.approx([0, 0, 0, 0.1, 0.8, 0.1, 0, 0, 0])
    assert t[0].tolist() == pytest.approx([0.9, 0.1] + [0] * 7)
    assert t[8].tolist() == pytest.approx([0] * 7 + [0.1, 0.9])
    assert torch.equal(soft_targets(torch.tensor([3]), eps=0.0), torch.eye(9)[3:4])


def test_decoding_argmax_and_expectation():
    logits = torch.full((1, 9, 1, 2), -20.0)
    logits[0, 0, 0, 0] = 20.0
    logits[0, 6, 0, 1] = 20.0
    assert decode_classes(logits, "argmax").flatten().tolist() == [0.0, 24.0]
    even = torch.zeros(1, 9, 1, 1)
    assert decode_classes(even, "expectation").item() == pytest.approx(sum(BIN_MIDPOINTS_KPA) / 9)
    with pytest.raises(ValueError):
        decode_classes(even, "mode")


@pytest.mark.parametrize("kind,space", [("classification", "image"), ("regression", "image"),
                                        ("classification", "uv"), ("regression", "uv")])
def test_training_lowers_loss_and_predict_contract(kind, space):
    torch.manual_seed(0)
    name = {"classification": "baseline-cls-tiny", "regression": "baseline-reg-tiny"}[kind]
    model = PerFrameBaseline.from_config({"name": name, "cond_space": space, **TINY})
    assert model.config.kind == kind
    batch = make_batch()
    opt = torch.optim.Adam(model.trainable_parameters(), lr=1e-2)
    first = model.training_loss(batch).item()
    for _ in range(16):
        loss = model.training_loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert model.training_loss(batch).item() < 0.8 * first
    out = model.predict(batch)["pressure_kpa"]
    assert out.shape == (1, 2, 224, 224) and (out >= 0).all()
    assert (out[:, :, :20] == 0).all() and (out[:, :, :, 200:] == 0).all()  # masked
    req = model.data_requirements()
    assert req["uv_conditioning"] == (space == "uv") and req["crop_size"] == 32 and req["clip_length"] == 2


def test_image_mode_does_not_need_uv_cond_but_uv_mode_does():
    batch = make_batch()
    del batch["uv_cond"]
    PerFrameBaseline.from_config({"name": "baseline-reg-tiny", **TINY}).predict(batch)
    with pytest.raises(ConfigError, match="uv_cond"):
        PerFrameBaseline.from_config({"name": "baseline-reg-tiny", "cond_space": "uv", **TINY}).predict(batch)


def test_save_load_identical_outputs(tmp_path):
    torch.manual_seed(1)
    model = PerFrameBaseline.from_config({"name": "baseline-cls-tiny", "decode": "expectation", **TINY})
    batch = make_batch(seed=3)
    before = model.predict(batch)["pressure_kpa"]
    model.save_pretrained(tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    # diffusers' ModelMixin layout: the registered settings + one safetensors file
    assert cfg["model_type"] == "perframe_baseline" and cfg["settings"]["decode"] == "expectation"
    assert cfg["_class_name"] == "PerFrameBaseline"
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "diffusion_pytorch_model.safetensors"]
    loaded = PerFrameBaseline.from_pretrained(tmp_path / "m")
    assert torch.equal(loaded.predict(batch)["pressure_kpa"], before)
    # diffusers' own loader reads the same folder
    from diffusers.models.modeling_utils import ModelMixin

    by_diffusers = ModelMixin.from_pretrained.__func__(PerFrameBaseline, tmp_path / "m")
    assert torch.equal(by_diffusers.predict(batch)["pressure_kpa"], before)
    assert loaded.parameter_counts() == model.parameter_counts()


def test_from_pretrained_refuses_other_folders(tmp_path):
    with pytest.raises(CheckpointError):
        PerFrameBaseline.from_pretrained(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "egopressdiff"}))
    with pytest.raises(CheckpointError, match="egopressdiff"):
        PerFrameBaseline.from_pretrained(other)
    model = PerFrameBaseline.from_config({"name": "baseline-reg-tiny", **TINY})
    model.save_pretrained(tmp_path / "m")
    (tmp_path / "m" / "diffusion_pytorch_model.safetensors").write_bytes(b"junk")
    with pytest.raises(CheckpointError):
        PerFrameBaseline.from_pretrained(tmp_path / "m")


def test_config_presets_and_errors(tmp_path):
    for name in PerFrameBaselineConfig.PRESETS:
        cfg = PerFrameBaselineConfig.preset(name)
        assert PerFrameBaselineConfig.from_dict(cfg.to_dict()) == cfg
    assert PerFrameBaselineConfig.preset("baseline-reg-tiny").kind == "regression"
    with pytest.raises(ConfigError, match="bogus"):
        PerFrameBaselineConfig.from_dict({"bogus": 1})
    with pytest.raises(ConfigError):
        PerFrameBaselineConfig.from_dict({"kind": "segmentation"})
    with pytest.raises(ConfigError):
        PerFrameBaselineConfig.from_dict({"width": "wide"})
    with pytest.raises(ConfigError):
        PerFrameBaseline.from_config("no-such-preset")
    path = tmp_path / "c.yaml"
    path.write_text("name: baseline-reg-tiny\nwidth: 8\nhidden_dim: 16\n")
    m = PerFrameBaseline.from_config(str(path))
    assert m.config.kind == "regression" and m.config.width == 8


def test_ablation_switches_remove_inputs():
    torch.manual_seed(0)
    model = PerFrameBaseline.from_config({"name": "baseline-reg-tiny", "use_depth": False, "use_vertices": False,
                                          **TINY})
    assert model.vertex_mlp is None and model.parameter_counts()["vertex_mlp"] == 0
    torch.nn.init.normal_(model.net.head.weight)
    a, b = make_batch(seed=0), make_batch(seed=0)
    b["depth"] = torch.rand_like(b["depth"])
    b["vertices"] = b["vertices"] + 0.05
    assert torch.equal(model.predict(a)["pressure_kpa"], model.predict(b)["pressure_kpa"])
