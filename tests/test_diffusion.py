import math

import numpy as np
import pytest
import torch

from egopressdiff.diffusion.edm import EDMPreconditioning, edm_loss, latent_mask, sample_sigmas
from egopressdiff.diffusion.sampling import karras_sigmas, sample, seeded_noise
from egopressdiff.pipelines.windows import blend_weights, predict_windows, window_bounds


def test_edm_scalings_match_edm_and_svd_v_prediction():
    sigma = torch.tensor([0.01, 0.5, 1.0, 3.0, 80.0], dtype=torch.float64)
    p = EDMPreconditioning(sigma_data=0.5, c_out_sign=1.0)
    c_skip, c_out, c_in, c_noise = p.scalings(sigma)
    torch.testing.assert_close(c_skip, 0.25 / (sigma**2 + 0.25))
    torch.testing.assert_close(c_out, sigma * 0.5 / (sigma**2 + 0.25).sqrt())
    torch.testing.assert_close(c_in * (sigma**2 + 0.25).sqrt(), torch.ones_like(sigma))  # unit-variance input
    torch.testing.assert_close(c_noise, 0.25 * sigma.log())
    # target of F has unit variance: c_skip^2 sd^2 + c_out^2 ... EDM identity c_skip*sd^2 + c_out^2 = sd^2
    torch.testing.assert_close(c_skip * 0.25 + c_out**2, torch.full_like(sigma, 0.25))
    # SVD (diffusers EulerDiscreteScheduler, v_prediction): x0 = out * (-s/sqrt(s^2+1)) + x / (s^2+1)
    c_skip, c_out, _, _ = EDMPreconditioning(1.0, -1.0).scalings(sigma)
    torch.testing.assert_close(c_out, -sigma / (sigma**2 + 1).sqrt())
    torch.testing.assert_close(c_skip, 1 / (sigma**2 + 1))
    torch.testing.assert_close(p.loss_weight(sigma), (sigma**2 + 0.25) / (sigma * 0.5) ** 2)


def test_log_normal_sigmas_use_the_global_rng():
    torch.manual_seed(0)
    a = sample_sigmas(20000, 0.7, 1.6)
    torch.manual_seed(0)
    assert torch.equal(a, sample_sigmas(20000, 0.7, 1.6))
    assert abs(a.log().mean().item() - 0.7) < 0.05 and abs(a.log().std().item() - 1.6) < 0.05


def test_latent_mask_and_weighted_loss():
    m = torch.zeros(1, 224, 224)
    m[0, 6:10, 100:103] = 1  # rows 6-9 touch latent rows 0 and 1; cols 100-102 latent col 12
    lm = latent_mask(m, (28, 28))
    assert lm.shape == (1, 1, 1, 28, 28) and set(lm.unique().tolist()) == {0.0, 1.0}
    assert lm.sum() == 2 and lm[0, 0, 0, 0, 12] == 1 and lm[0, 0, 0, 1, 12] == 1
    z = torch.zeros(1, 2, 4, 28, 28)
    den = torch.ones_like(z)
    sigma = torch.tensor([1.0])
    p = EDMPreconditioning(1.0)
    plain = edm_loss(z, den, sigma, None, p, "none")
    assert plain.item() == pytest.approx(1.0)
    full = edm_loss(z, den, sigma, torch.ones(1, 1, 1, 28, 28), p, "none")
    assert full.item() == pytest.approx(4.0)  # (1 + M)^2 with M = 1 everywhere
    assert edm_loss(z, den, sigma, None, p, "edm").item() == pytest.approx(2.0)  # lambda(1) = 2


def test_karras_sigmas():
    s = karras_sigmas(8, 0.002, 80.0, 7.0)
    assert s.shape == (9,) and s[-1] == 0
    assert s[0].item() == pytest.approx(80.0) and s[-2].item() == pytest.approx(0.002)
    assert (s.diff() < 0).all()
    assert karras_sigmas(1, 0.002, 80.0).tolist() == [80.0, 0.0]


def test_samplers_solve_the_ode_for_gaussian_data():
    # data ~ N(0, s^2): D(x; sigma) = x s^2/(s^2+sigma^2); the ODE maps x_T to x_T * s / sqrt(s^2+sigma_max^2)
    s2 = 0.25
    x_t = seeded_noise((1000,), seed=0) * 10.0
    exact = x_t * math.sqrt(s2) / math.sqrt(s2 + 100.0)

    def den(x, sig):
        return x * s2 / (s2 + sig**2)

    err = {}
    for heun in (False, True):
        out = sample(den, x_t.clone(), karras_sigmas(8, 0.002, 10.0), heun=heun)
        err[heun] = (out - exact).abs().max().item()
        fine = sample(den, x_t.clone(), karras_sigmas(400, 0.002, 10.0), heun=heun)
        assert (fine - exact).abs().max() < 0.02
    assert err[True] < err[False]


def test_seeded_noise_is_reproducible():
    assert torch.equal(seeded_noise((3, 4), 5), seeded_noise((3, 4), 5))
    assert not torch.equal(seeded_noise((3, 4), 5), seeded_noise((3, 4), 6))


@pytest.mark.parametrize("n", [1, 5, 16, 17, 28, 40, 41, 100])
def test_window_bounds_cover_every_frame(n):
    bounds = window_bounds(n, 16, 4)
    covered = np.zeros(n, int)
    for s, e in bounds:
        assert 0 <= s < e <= n and e - s == min(16, n)
        covered[s:e] += 1
    assert (covered >= 1).all()
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    for (s0, e0), (s1, _) in zip(bounds, bounds[1:]):
        assert s1 > s0 and e0 - s1 >= 4  # at least the requested overlap
    for w in blend_weights(bounds):
        assert (w > 0).all() and (w <= 1).all()


def test_window_argument_errors():
    with pytest.raises(ValueError):
        window_bounds(0)
    with pytest.raises(ValueError):
        window_bounds(10, 4, 4)


class _FakeModel:
    """A pipeline whose sample returns, for every frame, the window's start index (so the blend is visible)."""

    def __init__(self):
        self.calls = []

    def sample(self, batch, num_inference_steps, seed, num_samples, frame_ids):
        start, stop = batch["start"], batch["stop"]
        self.calls.append((start, stop))
        assert frame_ids.tolist() == list(range(start, stop))
        out = {"pressure_kpa": torch.full((1, stop - start, 224, 224), float(start))}
        if num_samples > 1:
            out["pressure_std_kpa"] = torch.ones(1, stop - start, 224, 224)
        return out


def test_predict_windows_blends_linearly_and_streams():
    model = _FakeModel()
    loaded = []

    def load(start, stop):
        loaded.append((start, stop))
        return {"start": start, "stop": stop}

    gen = predict_windows(model, 40, load, window=16, overlap=4, num_samples=2)
    first = next(gen)
    assert first[0] == 0 and len(loaded) == 1  # yielded before the second window was loaded
    frames = [first] + list(gen)
    assert [f for f, _, _ in frames] == list(range(40))
    assert model.calls == [(0, 16), (12, 28), (24, 40)]
    vals = [m[0, 0] for _, m, _ in frames]
    assert vals[:12] == [0.0] * 12
    # overlap 12..15 between windows starting at 0 and 12: weights (4,3,2,1)/5 vs (1,2,3,4)/5
    np.testing.assert_allclose(vals[12:16], [12 * k / 5 for k in (1, 2, 3, 4)], rtol=1e-6)
    assert all(s is not None and np.allclose(s, 1) for _, _, s in frames)


def test_predict_windows_short_sequence_runs_one_short_window():
    model = _FakeModel()
    out = list(predict_windows(model, 3, lambda s, e: {"start": s, "stop": e}, window=16, overlap=4))
    assert model.calls == [(0, 3)] and len(out) == 3 and out[0][2] is None


def test_forty_frames_with_the_tiny_model_is_reproducible():
    from egopressdiff.models import EgoPressDiff
    from egopressdiff.models.testing import make_dummy_batch
    from egopressdiff.pipelines import EgoPressDiffPipeline

    torch.manual_seed(0)
    model = EgoPressDiffPipeline(EgoPressDiff.from_config("tiny"))
    seq = make_dummy_batch(1, 40, seed=2)

    def load(start, stop):
        return {k: (v[:, start:stop] if torch.is_tensor(v) and v.ndim >= 2 and k != "uv_mask" else v)
                for k, v in seq.items()}

    a = list(predict_windows(model, 40, load, window=16, overlap=4, steps=2, seed=9))
    assert len(a) == 40 and [f for f, _, _ in a] == list(range(40))
    assert a[0][1].shape == (224, 224) and a[0][1].dtype == np.float32
    b = list(predict_windows(model, 40, load, window=16, overlap=4, steps=2, seed=9))
    assert all(np.array_equal(x[1], y[1]) for x, y in zip(a, b))
