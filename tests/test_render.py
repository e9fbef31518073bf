"""Pictures, videos and the HTML report: they decode, have the right shapes and colours."""

import numpy as np
import pytest
from PIL import Image

from egopressdiff.data.atlas import UVAtlas
from egopressdiff.evaluation import render
from egopressdiff.evaluation.render import (
    colorbar_image,
    colorize_pressure,
    compose_frame,
    render_pressure_on_hand,
    save_png,
    write_video,
)
from egopressdiff.evaluation.report import write_report


def cylinder(n_around=16, n_along=8, radius=0.01, length=0.06):
    """A cylinder along x resting on the pad (z = 0 at its bottom), UV-unwrapped with a seam."""
    verts, uvs, faces, uv_faces = [], [], [], []
    for j in range(n_along + 1):
        for i in range(n_around):
            a = 2 * np.pi * i / n_around
            verts.append([length * j / n_along - length / 2, radius * np.sin(a), -radius + radius * np.cos(a)])
    for j in range(n_along + 1):
        for i in range(n_around + 1):
            uvs.append([0.05 + 0.9 * i / n_around, 0.05 + 0.9 * j / n_along])

    def vid(i, j):
        return j * n_around + (i % n_around)

    def tid(i, j):
        return j * (n_around + 1) + i

    for j in range(n_along):
        for i in range(n_around):
            faces += [[vid(i, j), vid(i + 1, j), vid(i + 1, j + 1)], [vid(i, j), vid(i + 1, j + 1), vid(i, j + 1)]]
            uv_faces += [[tid(i, j), tid(i + 1, j), tid(i + 1, j + 1)], [tid(i, j), tid(i + 1, j + 1), tid(i, j + 1)]]
    v = np.array(verts)
    return v, UVAtlas(np.array(faces), np.array(uvs), np.array(uv_faces), len(v), name="cylinder")


def luminance(rgb):
    return rgb[..., :3].astype(np.float64) @ np.array([0.2126, 0.7152, 0.0722])


def test_colorize_monotone_and_masked():
    ramp = np.linspace(0, 20, 64, dtype=np.float32)[None].repeat(4, 0)
    rgb = colorize_pressure(ramp, vmax=20)
    assert rgb.dtype == np.uint8 and rgb.shape == (4, 64, 3)
    lum = luminance(rgb[0])
    assert np.all(np.diff(lum) >= -1e-9) and lum[-1] > lum[0] + 100  # 0 kPa dark, high kPa bright
    mask = np.ones((4, 64))
    mask[0] = 0
    masked = colorize_pressure(ramp, vmax=20, mask=mask)
    assert (masked[0] == render.OUTSIDE_GREY).all() and (masked[1:] == rgb[1:]).all()


def test_colorbar_has_gradient_and_labels():
    bar = colorbar_image(40.0, 200)
    assert bar.shape == (200, 72, 3) and bar.dtype == np.uint8
    strip = luminance(bar[20:190, 10])
    assert strip[0] > strip[-1] + 100  # vmax (bright) at the top
    assert (bar[:, 25:] < 100).any()  # dark tick-label text right of the bar


def test_render_pressure_on_hand_palm_and_side():
    v, atlas = cylinder()
    kpa = atlas.interpolate(np.clip((v[:, 2] + 0.003) / 0.003, 0, None) * 20.0, 224).astype(np.float32)
    palm = render_pressure_on_hand(v, atlas.faces, atlas, kpa, size=(160, 120), view="palm")
    assert palm.shape == (120, 160, 3) and palm.dtype == np.uint8
    hand = (palm != render.BACKGROUND).any(-1)
    assert 0.05 < hand.mean() < 0.9
    # seen from beneath, the pressed underside fills the middle: saturated (non-grey) colours there
    sat = palm.max(-1).astype(int) - palm.min(-1).astype(int)
    assert sat[50:70, 60:100].mean() > 60
    # zero pressure: the hand is plain shaded skin
    plain = render_pressure_on_hand(v, atlas.faces, atlas, np.zeros_like(kpa), size=(160, 120), view="palm")
    sat0 = plain.max(-1).astype(int) - plain.min(-1).astype(int)
    assert sat0.max() < 30
    side = render_pressure_on_hand(v, atlas.faces, atlas, kpa, size=(160, 120), view="side")
    assert (side == render.PAD_GREY).all(-1).any()  # the pad is drawn
    with pytest.raises(ValueError):
        render_pressure_on_hand(v, atlas.faces, atlas, kpa, view="top")


def test_rasteriser_depth_order():
    # two overlapping squares; the nearer one (smaller depth) must win where they overlap
    xy = np.array([[0, 0], [10, 0], [10, 10], [0, 10], [5, 5], [15, 5], [15, 15], [5, 15]], float)
    depth = np.array([2, 2, 2, 2, 1, 1, 1, 1], float)
    faces = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]])
    face, bary = render.rasterise_mesh(xy, depth, faces, (16, 16))
    assert face[7, 7] in (2, 3) and face[2, 2] in (0, 1) and face[15, 0] == -1
    np.testing.assert_allclose(bary[face >= 0].sum(-1), 1.0, atol=1e-5)


def test_compose_frame_layout():
    mask = np.zeros((224, 224), np.float32)
    mask[20:200, 20:200] = 1
    gt = np.zeros((224, 224), np.float32)
    gt[50:80, 50:80] = 10
    pred = gt * 0.5
    panel = compose_frame(np.random.default_rng(0).random((3, 64, 64)), pred, gt, vmax=10, mask=mask,
                          caption="frame 1")
    assert panel.dtype == np.uint8 and panel.ndim == 3 and panel.shape[2] == 3
    assert panel.shape[0] % 2 == 0 and panel.shape[1] % 2 == 0
    assert panel.shape[1] > 4 * 224 and panel.shape[0] > 224
    # the ground-truth tile (third) shows the bright 10 kPa blob; the prediction tile a dimmer one
    tile_y, gt_x, pred_x = 6 + 22, 6 + 2 * (224 + 6), 6 + 224 + 6
    assert luminance(panel[tile_y + 65, gt_x + 65]) > luminance(panel[tile_y + 65, pred_x + 65]) + 30
    assert (panel[tile_y + 5, gt_x + 5] == render.OUTSIDE_GREY).all()
    # the caption names both peaks (text right of "frame 1"); without show_peaks that strip is blank
    plain = compose_frame(np.zeros((3, 64, 64)), pred, gt, vmax=10, mask=mask, caption="frame 1",
                          show_peaks=False)
    peaks = compose_frame(np.zeros((3, 64, 64)), pred, gt, vmax=10, mask=mask, caption="frame 1")
    strip = np.s_[tile_y + 224:, 120:]
    assert (plain[strip] == plain[strip][0, 0]).all() and (peaks[strip] != plain[strip]).any()


def test_write_video_mp4_roundtrip(tmp_path):
    import imageio.v3 as iio

    if not render.mp4_available():
        pytest.skip("no H.264 encoder on this machine")
    frames = [np.full((50, 70, 3), i * 40, np.uint8) for i in range(5)]
    path = write_video(iter(frames), tmp_path / "v.mp4", fps=5)
    assert path.suffix == ".mp4"
    back = iio.imread(path, index=None)
    assert back.shape[0] == 5 and back.shape[1] >= 50 and back.shape[2] >= 70
    assert back[4, 10, 10].mean() > back[0, 10, 10].mean() + 100


def test_write_video_gif_fallback(tmp_path, monkeypatch):
    monkeypatch.setattr(render, "mp4_available", lambda: False)
    frames = [np.full((20, 30, 3), i * 60, np.uint8) for i in range(4)]
    path = write_video(frames, tmp_path / "v.mp4", fps=4)
    assert path == tmp_path / "v.gif"
    with Image.open(path) as im:
        assert im.n_frames == 4 and im.size == (30, 20)
    assert not (tmp_path / "v.mp4").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["v.gif"]


def test_report_contains_tables_and_relative_links(tmp_path):
    img = save_png(np.zeros((8, 8, 3), np.uint8), tmp_path / "pics" / "hand.png")
    res = {"contact_iou": 0.8, "volumetric_iou": 0.6, "mae_kpa": 0.12, "temporal_accuracy": 0.95,
           "force_error_n": 0.5, "false_contact_rate": 0.1, "num_frames": 10,
           "per_gesture": {"hover": {"contact_iou": 1.0, "volumetric_iou": 1.0, "mae_kpa": 0.0,
                                     "temporal_accuracy": 0.9}}}
    worse = dict(res, volumetric_iou=0.3, false_contact_rate=None)
    path = write_report(tmp_path, "Demo <report>", {"EgoPressDiff": res, "baseline-cls": worse},
                        items=[{"sequence": "p_001_x_right", "method": "EgoPressDiff", "hand_image": img,
                                "video": tmp_path / "pics" / "v.mp4", "frames": 10}],
                        notes="tiny run")
    text = path.read_text()
    assert path.name == "index.html" and text.startswith("<!DOCTYPE html>")
    assert "Demo &lt;report&gt;" in text and "Demo <report>" not in text
    assert "Vol. IoU" in text and "Contact IoU" in text and "False contact" in text
    assert '<td class="num best">0.6000</td>' in text and "0.3000" in text
    assert 'src="pics/hand.png"' in text and 'src="pics/v.mp4"' in text
    assert str(tmp_path) not in text  # links are relative
    assert "hover" in text and "tiny run" in text
