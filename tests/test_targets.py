"""The target transform (zero pressure at latent 0), its legacy form, and sigma_data from the target statistics."""

import math

import numpy as np
import pytest
import torch

from egopressdiff.diffusion.target_stats import edm_constants, latent_stats, measure_target_stats
from egopressdiff.models import EgoPressDiff, EgoPressDiffConfig
from egopressdiff.models.codecs import PixelUnshuffleCodec, PressureTargets, VAECodec, normalize_pressure
from egopressdiff.models.config import TINY_EDM


def _contact_maps(m=3, size=56, seed=0):
    g = torch.Generator().manual_seed(seed)
    kpa = torch.zeros(m, 1, size, size)
    kpa[:, :, 10:30, 5:25] = torch.rand(m, 1, 20, 20, generator=g) * 60
    return kpa


def _small_vae():
    from diffusers import AutoencoderKLTemporalDecoder

    torch.manual_seed(0)
    vae = AutoencoderKLTemporalDecoder(block_out_channels=(32, 32), down_block_types=("DownEncoderBlock2D",) * 2,
                                       layers_per_block=1, latent_channels=4).eval()
    return VAECodec(vae_model=vae)


def test_zero_pressure_is_latent_zero_for_both_codecs():
    tiny = PressureTargets(PixelUnshuffleCodec(4), "zero_centered", 2.0, 200.0)
    kpa = _contact_maps()
    z = tiny.encode(kpa)
    background = PixelUnshuffleCodec(4).encode((kpa == 0).float()).bool()
    assert (z[background] == 0).all() and (z[~background] > 0).all()
    # y in [0, 1] times 2: the documented form for the linear codec
    y = torch.log1p(kpa / 2.0) / math.log1p(100.0)
    torch.testing.assert_close(z, PixelUnshuffleCodec(4).encode(2 * y))
    torch.testing.assert_close(tiny.decode(z), kpa, atol=1e-4, rtol=1e-5)
    with torch.no_grad():
        vae = PressureTargets(_small_vae(), "zero_centered", 2.0, 200.0)
        blank = torch.zeros(2, 1, 32, 32)
        assert vae.encode(blank).abs().max() < 1e-5
        # and the legacy latent of the same map is not zero: the subtraction is what centres it
        legacy = PressureTargets(vae.codec, "legacy_minus1", 2.0, 200.0)
        assert legacy.encode(blank).abs().max() > 1e-2
        # decoding undoes the shift: both transforms decode their own latents to the same map
        kp = _contact_maps(2, 32)
        torch.testing.assert_close(vae.decode(vae.encode(kp)), legacy.decode(legacy.encode(kp)), atol=1e-4, rtol=1e-4)


def test_legacy_transform_is_the_old_formula_exactly():
    codec = PixelUnshuffleCodec(4)
    kpa = _contact_maps()
    legacy = PressureTargets(codec, "legacy_minus1", 2.0, 200.0)
    assert torch.equal(legacy.encode(kpa), codec.encode(normalize_pressure(kpa, 2.0, 200.0)))
    assert legacy.encode(torch.zeros(1, 1, 8, 8)).eq(-1).all()


def test_presets_are_zero_centred_and_saved_configs_without_the_key_are_legacy(tmp_path):
    assert EgoPressDiffConfig.preset("tiny").target_transform == "zero_centered"
    assert EgoPressDiffConfig.preset("svd").target_transform == "zero_centered"
    assert EgoPressDiffConfig.from_dict({"name": "tiny", "cond_space": "uv"}).target_transform == "zero_centered"
    saved = {"_class_name": "EgoPressDiff", **EgoPressDiffConfig.preset("tiny").to_dict()}
    del saved["target_transform"]
    assert EgoPressDiffConfig.from_dict(saved).target_transform == "legacy_minus1"
    # a model saved today keeps its transform through save/load
    model = EgoPressDiff.from_config("tiny", clip_length=2)
    model.save_pretrained(tmp_path / "m")
    assert EgoPressDiff.from_pretrained(tmp_path / "m").config.target_transform == "zero_centered"
    from egopressdiff.errors import ConfigError

    with pytest.raises(ConfigError, match="target_transform"):
        EgoPressDiffConfig.from_dict({"target_transform": "minus_two"})


def test_the_shipped_model_uses_the_new_transform_constants_and_no_floor_above_the_contact_threshold():
    """The re-shipped EgoPressDiff (generator-version-2 data) is zero-centred, per-vertex, with the
    measured EDM constants and no output floor above the field's 1 kPa contact threshold."""
    from egopressdiff.shipped import resolve_checkpoint
    from egopressdiff.training.registry import load_model

    model = load_model(resolve_checkpoint("synthetic-egopressdiff"))
    assert model.config.target_transform == "zero_centered" and model.config.vertex_tokens == "per_vertex"
    assert model.config.edm["sigma_data"] == TINY_EDM["sigma_data"] and model.config.edm["p_mean"] == TINY_EDM["p_mean"]
    assert model.config.output_floor_kpa <= 1.0


def test_the_shipped_sampling_defaults_are_the_recorded_validation_choice():
    """The shipped model's sample_steps and output_floor_kpa are the ones its validation sweep chose
    (benchmarks/sampling_steps.py --split val --floors ..., recorded in benchmarks/results), and the
    model card says so."""
    import json
    from pathlib import Path

    from egopressdiff.shipped import resolve_checkpoint
    from egopressdiff.training.registry import load_model

    rec = json.loads((Path(__file__).resolve().parents[1] / "benchmarks" / "results"
                      / "sampling-steps-floors-val-synthetic-egopressdiff-v2.json").read_text())
    assert rec["split"] == "val" and len(rec["floors_kpa"]) > 1
    best = max((r for r in rec["by_steps"] if r["samples"] == 1), key=lambda r: r["volumetric_iou"])
    assert (best["steps"], best["floor_kpa"]) == (rec["chosen_steps"], rec["chosen_floor_kpa"])
    folder = resolve_checkpoint("synthetic-egopressdiff")
    model = load_model(folder)
    assert model.config.sample_steps == rec["chosen_steps"]
    assert model.config.output_floor_kpa == rec["chosen_floor_kpa"] <= 1.0
    card = json.loads((Path(folder) / "model_card.json").read_text())["training"]
    assert "validation" in card["sample_steps"]["how"] and "validation" in card["output_floor_kpa"]["how"]


def test_sigma_data_is_the_rms_of_the_target_latents():
    # maps with a fraction q of 4x4-aligned texels at pressure P: every latent element is 0 or 2 y(P)
    q, p_kpa = 0.125, 30.0
    y = math.log1p(p_kpa / 2.0) / math.log1p(100.0)
    z = PressureTargets(PixelUnshuffleCodec(4), "zero_centered", 2.0, 200.0).encode(
        torch.cat([torch.full((1, 1, 56, 7), p_kpa), torch.zeros(1, 1, 56, 49)], dim=-1))
    st = latent_stats(z)
    assert st.rms == pytest.approx(2 * y * math.sqrt(q), rel=1e-6)
    assert st.mean == pytest.approx(2 * y * q, rel=1e-6)
    assert st.std == pytest.approx(2 * y * math.sqrt(q * (1 - q)), rel=1e-5)
    assert st.abs_max == pytest.approx(2 * y, rel=1e-6) and st.zero_fraction == pytest.approx(1 - q)
    edm = edm_constants(st, digits=6)
    assert edm["sigma_data"] == pytest.approx(st.rms, rel=1e-5)
    assert edm["sigma_max"] == pytest.approx(2.5 * st.abs_max, rel=1e-5)
    assert edm["p_mean"] == pytest.approx(math.log(st.rms), rel=1e-5)
    assert edm["sigma_min"] < edm["sigma_data"] < edm["sigma_max"]
    assert edm_constants(st)["sigma_data"] == 0.42  # two significant digits for the config


class _FakeReader:
    def __init__(self, maps):
        self.maps = maps

    def load_pressure(self, p, s, f):
        return self.maps[(s, f)]


class _FakeDataset:
    """Two overlapping clips of one sequence: frames 1-3 and 2-4 (frames 2-3 counted once)."""

    def __init__(self, maps):
        self.reader = _FakeReader(maps)

    def __len__(self):
        return 2

    def clip_frames(self, i):
        return "p", "s", np.arange(1 + i, 4 + i)


def test_measure_target_stats_counts_each_training_frame_once():
    rng = np.random.default_rng(0)
    maps = {}
    for f in range(1, 5):
        m = np.zeros((224, 224), np.float32)
        m[40:80, 40:80] = rng.uniform(0, 50, (40, 40))
        maps[("s", f)] = m
    model = EgoPressDiff.from_config("tiny", clip_length=3)
    st = measure_target_stats(model, _FakeDataset(maps), batch_frames=3)
    assert st.frames == 4
    want = model.encode_targets({"pressure": torch.from_numpy(np.stack([maps[("s", f)] for f in range(1, 5)]))[None]})
    z = want["target_latents"].double()
    assert st.rms == pytest.approx(float(z.pow(2).mean().sqrt()), rel=1e-6)
    assert st.mean == pytest.approx(float(z.mean()), rel=1e-6)
