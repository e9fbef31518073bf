"""The input processor: frames + calibration -> model inputs, with no dataset and no ground truth.

:class:`PressureInputProcessor` is a pure function of what it is given (images, depth, the hand
mesh, the camera): ``ClipDataset`` calls it with what it read from the EgoPressure shards, the
pipelines call it with a user's in-memory arrays. It builds, per frame (shapes in
docs/architecture.md):

* the crop box: the box around the hand's projected vertices, centre smoothed over the clip
  with a moving average of :data:`SMOOTH_WINDOW` frames and one side length for the whole clip
  (the largest, times :data:`CROP_MARGIN`), so the crop does not jitter or zoom;
* ``rgb``: that crop, resized to ``crop_size`` (bilinear), values in [0, 1];
* ``depth``: the depth map registered straight into the crop's virtual pinhole camera
  (z-buffered, :func:`~egopressdiff.data.calibration.register_depth_to_color`), normalised as
  ``clip((d - d_ref) / 0.15 m, -1, 1)`` with ``d_ref`` the median camera depth of the hand's
  vertices over the clip; holes are 0 and ``depth_valid`` marks measured pixels;
* ``pose_map``: the 21 joints projected into the crop, bones drawn with per-finger colours
  (:data:`FINGER_COLORS`), values in [0, 1];
* ``vertices``: camera frame; ``uv_mask``: the atlas's hand region at ``uv_size``;
* ``uv_cond`` (``uv_conditioning=True``), 7 channels at ``uv_cond_size``, all zero outside
  the UV mask: 0-2 RGB of the crop sampled (bilinear) where the texel's surface point
  projects; 3 observed depth there (same normalisation; 0 on holes); 4 the texel's own camera
  depth (same normalisation); 5 visibility: texel depth within 1 cm of the observed depth, or,
  where no depth was measured, within 1 cm of the mesh's own z-buffer; 6 height above the pad:
  ``clip(-z_world / 0.02 m, -1, 1)`` (0 when the world frame is unknown).

Depth comes either raw from a separate depth sensor (with its k4a :class:`DepthCalibration`, as
in EgoPressure) or already registered to the colour image (same pixel grid; ``depth_calibration``
None), in millimetres.

Augmentation (an ``rng``, per clip so frames stay consistent): crop box scale x[0.9, 1.1] and
shift of up to 5 % of its side, brightness x[0.8, 1.2], contrast x[0.8, 1.2].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from egopressdiff.data import layout
from egopressdiff.data.calibration import (
    ColorIntrinsics,
    DepthCalibration,
    project,
    register_depth_to_color,
    world_to_camera,
)
from egopressdiff.errors import DataError

DEPTH_SCALE_M = 0.15  # depth normalisation: +-15 cm around the hand maps to [-1, 1]
HEIGHT_SCALE_M = 0.02  # uv_cond height above pad: 2 cm maps to 1
VISIBILITY_TOL_M = 0.01  # a texel is visible if within 1 cm of the surface seen from the camera
CROP_MARGIN = 1.3  # crop side = margin x the larger side of the projected-vertex box
MIN_CROP_SIDE_PX = 16.0
SMOOTH_WINDOW = 5  # frames in the moving average of crop centres
UV_COND_CHANNELS = 7
UV_COND_OBSERVED_DEPTH = 3  # the uv_cond channel holding the depth sensor's observation
FINGER_COLORS = {  # RGB in [0, 255]; a bone takes its finger's colour
    "thumb": (255, 64, 64),
    "index": (255, 200, 0),
    "middle": (64, 220, 64),
    "ring": (0, 170, 255),
    "pinky": (220, 80, 255),
}


def _finger_of_joint(j: int) -> str:
    return layout.FINGERS[(j - 1) // 4]


def smooth_boxes(centres: np.ndarray, sides: np.ndarray, window: int = SMOOTH_WINDOW) -> tuple[np.ndarray, float]:
    """Smooth per-frame crop boxes over a clip.

    ``centres`` (N, 2) pixel centres, ``sides`` (N,) box sides. Returns the
    centres after a centred moving average of ``window`` frames (edges padded
    with the end values) and one side for the whole clip (the maximum).
    """
    c = np.asarray(centres, dtype=np.float64)
    n = len(c)
    w = max(1, min(int(window), n))
    if w > 1:
        half_l, half_r = (w - 1) // 2, w // 2
        padded = np.concatenate([np.repeat(c[:1], half_l, 0), c, np.repeat(c[-1:], half_r, 0)])
        kernel = np.ones(w) / w
        c = np.stack([np.convolve(padded[:, k], kernel, mode="valid") for k in range(2)], axis=1)
    return c, float(np.max(sides))


def crop_intrinsics(intr: ColorIntrinsics, x0: float, y0: float, side: float, size: int) -> ColorIntrinsics:
    """Pinhole intrinsics of a ``size`` x ``size`` crop of box (x0, y0, side) of the image (pixel centres)."""
    s = size / side
    return ColorIntrinsics(intr.fx * s, intr.fy * s, (intr.cx - x0 + 0.5) * s - 0.5, (intr.cy - y0 + 0.5) * s - 0.5,
                           size, size)


def draw_pose_map(joints_px: np.ndarray, size: int) -> np.ndarray:
    """21 joints in crop pixels -> (3, size, size) float32 skeleton image in [0, 1], per-finger colours."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (size, size))
    draw = ImageDraw.Draw(img)
    width = max(1, round(size / 48))
    j = np.asarray(joints_px, dtype=np.float64)
    for a, b in layout.SKELETON_EDGES:
        if np.all(np.isfinite(j[[a, b]])):
            draw.line([tuple(j[a]), tuple(j[b])], fill=FINGER_COLORS[_finger_of_joint(b)], width=width)
    r = width
    for k in range(len(j)):
        if np.all(np.isfinite(j[k])):
            col = (255, 255, 255) if k == 0 else FINGER_COLORS[_finger_of_joint(k)]
            draw.ellipse([j[k, 0] - r, j[k, 1] - r, j[k, 0] + r, j[k, 1] + r], fill=col)
    return (np.asarray(img, dtype=np.float32) / 255.0).transpose(2, 0, 1)


def _bilinear(img: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sample (H, W, C) at float pixel coords; returns (values (..., C), inside mask)."""
    h, w = img.shape[:2]
    inside = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
    xc, yc = np.clip(x, 0, w - 1), np.clip(y, 0, h - 1)
    x0, y0 = np.floor(xc).astype(np.int64), np.floor(yc).astype(np.int64)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = (xc - x0)[..., None], (yc - y0)[..., None]
    out = (img[y0, x0] * (1 - fx) * (1 - fy) + img[y0, x1] * fx * (1 - fy)
           + img[y1, x0] * (1 - fx) * fy + img[y1, x1] * fx * fy)
    return out * inside[..., None], inside


def _nearest(img: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    xi, yi = np.rint(x).astype(np.int64), np.rint(y).astype(np.int64)
    inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
    out = img[np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)]
    return np.where(inside, out, 0)


def hand_crop_boxes(verts_cam: np.ndarray, intr: ColorIntrinsics, rng: np.random.Generator | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Square crop boxes around the hand for a clip, smoothed over it.

    ``verts_cam`` (N, V, 3) camera-frame vertices. Returns integer boxes (N, 4)
    ``[x0, y0, x1, y1]`` (x1/y1 exclusive, all the same side) and the raw
    per-frame box centres (N, 2) before smoothing. ``rng`` adds the per-clip
    scale/shift augmentation.
    """
    px = project(verts_cam, intr)  # (N, V, 2)
    lo, hi = px.min(axis=1), px.max(axis=1)
    raw = (lo + hi) / 2
    centres, side = smooth_boxes(raw, np.maximum((hi - lo).max(axis=1) * CROP_MARGIN, MIN_CROP_SIDE_PX))
    if rng is not None:
        side *= rng.uniform(0.9, 1.1)
        centres = centres + rng.uniform(-0.05, 0.05, size=2) * side
    s = max(1, round(side))
    x0 = np.rint(centres[:, 0] - side / 2).astype(np.int64)
    y0 = np.rint(centres[:, 1] - side / 2).astype(np.int64)
    return np.stack([x0, y0, x0 + s, y0 + s], axis=1), raw


def crop_image(image: np.ndarray, box, size: int) -> np.ndarray:
    """Crop ``box`` (pixel edges x0, y0, x1, y1; zero padding outside) of an (H, W, 3) uint8 image to size x size."""
    from PIL import Image

    return np.asarray(Image.fromarray(np.ascontiguousarray(image)).crop(tuple(box)).resize((size, size),
                                                                                           Image.BILINEAR))


def registered_depth_calibration(intr: ColorIntrinsics) -> DepthCalibration:
    """The calibration of a depth map already registered to the colour image: the colour camera itself
    (no distortion, identity depth -> colour transform), so the same registration code crops it."""
    w, h = intr.width, intr.height
    return DepthCalibration(norm=(intr.cx / w, intr.cy / h, intr.fx / w, intr.fy / h), dist=(0.0,) * 8,
                            R=np.eye(3), t=np.zeros(3))


@dataclass
class PressureInputProcessor:
    """Frames + calibration -> the model inputs of one clip (see module doc). Pure: no I/O, no targets.

    Args:
        crop_size: side of the hand crop (``rgb``, ``depth``, ``pose_map``).
        uv_size: side of the ``uv_mask`` returned (224, the UV maps' size, unless a model wants less).
        uv_conditioning: also build ``uv_cond`` (models with ``cond_space="uv"``).
        uv_cond_size: side of ``uv_cond``.
    """

    crop_size: int = 64
    uv_size: int = layout.UV_SIZE
    uv_conditioning: bool = False
    uv_cond_size: int = 64

    def __call__(self, *, images, depth, vertices, joints, intrinsics: ColorIntrinsics, atlas,
                 depth_calibration: DepthCalibration | None = None, ego_R=None, ego_T=None,
                 rng: np.random.Generator | None = None, sequence: str | None = None, frames=None,
                 path=None) -> dict:
        """Model inputs as torch tensors with a leading frame axis N.

        Args:
            images: N colour frames: (H, W, 3) uint8 arrays, or objects with ``crop(box, size)``
                returning the (size, size, 3) uint8 crop (the dataset decodes JPEGs at a reduced size).
            depth: N depth maps in millimetres (0 = hole): raw sensor frames with ``depth_calibration``,
                or registered to the colour image when ``depth_calibration`` is None.
            vertices: (N, 778, 3) hand-mesh vertices, metres, in the world frame given by ``ego_R``/``ego_T``
                (world -> camera, (N, 3, 3) / (N, 3)); without them, in the camera frame.
            joints: (N, 21, 3) joints in the same frame as ``vertices`` (EgoPressure order).
            intrinsics: the colour camera at the size of ``images``.
            atlas: the hand's UV atlas (``UVAtlas``: the UV mask and the texels' surface points).
            sequence, frames, path: only to name the sequence / frame / file in error messages.
        """
        import torch

        verts_in, joints_in = np.asarray(vertices), np.asarray(joints)
        n = len(verts_in)
        world_known = ego_R is not None
        R = np.broadcast_to(np.eye(3, dtype=verts_in.dtype), (n, 3, 3)) if ego_R is None else np.asarray(ego_R)
        T = np.zeros((n, 3), dtype=verts_in.dtype) if ego_T is None else np.asarray(ego_T)
        frames = np.arange(n) if frames is None else np.asarray(frames)
        # camera frame in the inputs' own precision, then float32 (what the reader's vertices_cam gives)
        verts_c = np.stack([world_to_camera(verts_in[i], R[i], T[i]) for i in range(n)]).astype(np.float32)
        joints_c = np.stack([world_to_camera(joints_in[i], R[i], T[i]) for i in range(n)]).astype(np.float32)
        verts_c, joints_c = verts_c.astype(np.float64), joints_c.astype(np.float64)
        verts_w = verts_in.astype(np.float64)
        if np.any(verts_c[..., 2] <= 0.01):
            bad = int(frames[np.nonzero((verts_c[..., 2] <= 0.01).any(axis=1))[0][0]])
            raise DataError("hand vertices lie behind the camera (check the camera pose / vertex frame)",
                            sequence=sequence, frame=bad, path=path)
        S = int(self.crop_size)
        boxes, _ = hand_crop_boxes(verts_c, intrinsics, rng)
        d_ref = float(np.median(verts_c[..., 2]))
        depth_calib = depth_calibration if depth_calibration is not None else registered_depth_calibration(intrinsics)
        if self.uv_conditioning:
            mask_uv = atlas.mask(self.uv_cond_size)
            texel_w = atlas.texel_points(verts_w, self.uv_cond_size)  # (N, U, U, 3) world
        uv_mask = atlas.mask(self.uv_size)
        out_rgb = np.zeros((n, 3, S, S), np.float32)
        out_depth = np.zeros((n, 1, S, S), np.float32)
        out_valid = np.zeros((n, 1, S, S), np.float32)
        out_pose = np.zeros((n, 3, S, S), np.float32)
        out_vpx = np.zeros((n, verts_c.shape[1], 2), np.float32)
        out_cond = np.zeros((n, UV_COND_CHANNELS, self.uv_cond_size, self.uv_cond_size), np.float32)
        gain = rng.uniform(0.8, 1.2) if rng is not None else 1.0
        contrast = rng.uniform(0.8, 1.2) if rng is not None else 1.0
        for i in range(n):
            box = tuple(int(b) for b in boxes[i])
            img = images[i]
            crop = img.crop(box, S) if hasattr(img, "crop") else crop_image(img, box, S)
            rgb = np.asarray(crop, dtype=np.float32) / 255.0
            if rng is not None:
                rgb = np.clip((rgb - 0.5) * contrast + 0.5, 0, 1) * gain
                rgb = np.clip(rgb, 0.0, 1.0)
            out_rgb[i] = rgb.transpose(2, 0, 1)
            # depth straight into the crop camera (the box actually cut, so rgb and depth align)
            ck = crop_intrinsics(intrinsics, box[0], box[1], box[2] - box[0], S)
            raw = np.asarray(depth[i])
            dfx = depth_calib.pixel_intrinsics(raw.shape[1], raw.shape[0])[0]
            splat = int(min(3, max(0, math.ceil(ck.fx / max(dfx, 1e-6) / 2 - 0.5))))  # fill gaps when upsampling
            d = register_depth_to_color(raw, depth_calib, ck, (S, S), splat=splat)
            valid = d > 0
            out_valid[i, 0] = valid
            out_depth[i, 0] = np.where(valid, np.clip((d - d_ref) / DEPTH_SCALE_M, -1, 1), 0.0)
            out_pose[i] = draw_pose_map(project(joints_c[i], ck), S)
            # where each vertex lies in the crop, [-1, 1] at the corner pixels' centres (grid_sample,
            # align_corners=True): the Vertex Encoder's image features are sampled there
            out_vpx[i] = project(verts_c[i], ck) / max(S - 1, 1) * 2.0 - 1.0
            if self.uv_conditioning:
                out_cond[i] = uv_conditioning(texel_w[i], R[i], T[i], ck, rgb, d, d_ref, mask_uv, world_known)
        item = {
            "rgb": torch.from_numpy(out_rgb),
            "depth": torch.from_numpy(out_depth),
            "depth_valid": torch.from_numpy(out_valid),
            "pose_map": torch.from_numpy(out_pose),
            "vertices": torch.from_numpy(verts_c.astype(np.float32)),
            "vertex_px": torch.from_numpy(out_vpx),
            "uv_mask": torch.from_numpy(np.ascontiguousarray(uv_mask, dtype=np.float32)),
        }
        if self.uv_conditioning:
            item["uv_cond"] = torch.from_numpy(out_cond)
        return item


def uv_conditioning(texel_w: np.ndarray, R: np.ndarray, T: np.ndarray, ck: ColorIntrinsics, rgb_crop: np.ndarray,
                    depth_crop: np.ndarray, d_ref: float, mask_uv: np.ndarray, world_known: bool = True) -> np.ndarray:
    """The 7 UV-space conditioning channels of one frame (see module doc)."""
    U = mask_uv.shape[0]
    inside_uv = mask_uv > 0
    pts_w = texel_w[inside_uv]  # (K, 3)
    pts_c = pts_w @ np.asarray(R, np.float64).T + np.asarray(T, np.float64)
    z = pts_c[:, 2]
    uv = project(pts_c, ck)
    x, y = uv[:, 0], uv[:, 1]
    finite = np.isfinite(x) & np.isfinite(y)
    x, y = np.where(finite, x, -1e6), np.where(finite, y, -1e6)
    col, inside = _bilinear(rgb_crop, x, y)
    obs = _nearest(depth_crop, x, y)
    obs_valid = obs > 0
    # mesh z-buffer from the (dense) texel points themselves, for texels without measured depth
    S = depth_crop.shape[0]
    zbuf = np.full(S * S, np.inf)
    xi, yi = np.rint(x).astype(np.int64), np.rint(y).astype(np.int64)
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            xx, yy = xi + dx, yi + dy
            ok = (xx >= 0) & (xx < S) & (yy >= 0) & (yy < S)
            np.minimum.at(zbuf, yy[ok] * S + xx[ok], z[ok])
    ok = (xi >= 0) & (xi < S) & (yi >= 0) & (yi < S)
    zb = np.where(ok, zbuf[np.clip(yi, 0, S - 1) * S + np.clip(xi, 0, S - 1)], np.inf)
    visible = np.where(obs_valid, np.abs(z - obs) < VISIBILITY_TOL_M, z <= zb + VISIBILITY_TOL_M) & inside
    chans = np.zeros((UV_COND_CHANNELS, len(z)), np.float32)
    chans[0:3] = col.T
    chans[3] = np.where(obs_valid, np.clip((obs - d_ref) / DEPTH_SCALE_M, -1, 1), 0.0)
    chans[4] = np.clip((z - d_ref) / DEPTH_SCALE_M, -1, 1)
    chans[5] = visible
    # the pad plane is z = 0 of the world frame; without a world frame no surface is known
    chans[6] = np.clip(-pts_w[:, 2] / HEIGHT_SCALE_M, -1, 1) if world_known else 0.0
    out = np.zeros((UV_COND_CHANNELS, U, U), np.float32)
    out[:, inside_uv] = chans
    return out
