"""The real data's imperfections: what they are (:class:`Imperfections`) and the sensor noise.

Realistic defaults are on; ``Imperfections.none()`` / ``--no-imperfections`` gives clean
data. Depth noise grows with distance; depth holes are random dropouts and pixels lost
at silhouettes (where ToF sensors lose depth); motion blur follows the image motion;
lighting and skin tone vary per sequence and participant; camera-tilt events make the
hand hide its own contact region (:class:`~egopressdiff.data.synth.camera.CameraRig`).
:class:`SensorNoise` holds one sequence's noise fields and applies them per frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from egopressdiff.data.raster import box_blur_1d


@dataclass(frozen=True)
class Imperfections:
    """Real-data imperfections; the defaults are on and realistic. ``Imperfections.none()``
    gives clean data (every value 0 / False)."""

    depth_noise_mm: float = 1.2  # Gaussian depth noise sigma at 0.5 m (grows with distance^2)
    depth_hole_fraction: float = 0.015  # random dropout blobs (fraction of pixels)
    silhouette_holes: float = 0.6  # probability of losing a pixel on a depth discontinuity
    motion_blur: float = 1.0  # blur length scale (image motion during a ~half-frame exposure)
    lighting_variation: float = 1.0  # strength of per-sequence light / exposure / flicker changes
    skin_tone_variation: bool = True  # participant skin tones (else one medium tone)
    self_occlusion: float = 0.5  # probability that a sequence has camera-tilt occlusion events
    camera_jitter: float = 1.0  # head-motion jitter scale
    image_noise: float = 1.0  # sensor noise scale on RGB
    annotation_residual: float = 1.0  # scale of the annotator's fit residual (0: an exact fit)

    @staticmethod
    def none() -> Imperfections:
        return Imperfections(0.0, 0.0, 0.0, 0.0, 0.0, False, 0.0, 0.0, 0.0, 0.0)



def noise_texture(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    """A smooth, periodic, unit-variance noise image (size, size) float32."""
    from scipy.ndimage import gaussian_filter

    t = gaussian_filter(rng.normal(size=(size, size)), sigma, mode="wrap")
    return (t / (t.std() + 1e-9)).astype(np.float32)


class SensorNoise:
    """One sequence's sensor noise fields (drawn once from its RNG), applied frame by frame.

    Each frame uses the fields at a random offset, so the noise changes from frame to
    frame without drawing a new field per frame.
    """

    def __init__(self, rng: np.random.Generator, imperf: Imperfections, color_size: tuple[int, int],
                 depth_size: tuple[int, int]):
        self.rng = rng
        self.imperf = imperf
        W, H = color_size
        w, h = depth_size
        self.rgb_noise = rng.normal(0.0, 1.0, size=(H + 16, W + 16, 3)).astype(np.float32)
        self.depth_noise = rng.normal(0.0, 1.0, size=(h + 16, w + 16)).astype(np.float32)
        self.hole_field = noise_texture(rng, max(h, w) + 32, 2.5)
        self.edge_field = rng.uniform(size=(h + 16, w + 16)).astype(np.float32)
        frac = float(np.clip(imperf.depth_hole_fraction, 0.0, 0.5))
        self.hole_thresh = float(np.quantile(self.hole_field, 1.0 - frac)) if frac > 0 else np.inf

    def colour(self, img: np.ndarray, blur_px: tuple[float, float]) -> np.ndarray:
        """Motion blur along the image motion ``blur_px`` and sensor noise, on float 0..255 RGB."""
        imp = self.imperf
        if imp.motion_blur > 0:
            img = box_blur_1d(img, blur_px[0] * imp.motion_blur, blur_px[1] * imp.motion_blur)
        if imp.image_noise > 0:
            H, W = img.shape[:2]
            oy, ox = int(self.rng.integers(16)), int(self.rng.integers(16))
            img += np.float32(3.0 * imp.image_noise) * self.rgb_noise[oy:oy + H, ox:ox + W]
        return img

    def depth(self, z: np.ndarray) -> np.ndarray:
        """Depth noise (sigma growing with distance²), silhouette dropouts and random holes (0)."""
        imp = self.imperf
        h, w = z.shape
        if imp.depth_noise_mm > 0:
            oy, ox = int(self.rng.integers(16)), int(self.rng.integers(16))
            sigma = np.float32(imp.depth_noise_mm * 1e-3) * (z / np.float32(0.5)) ** 2
            z = z + sigma * self.depth_noise[oy:oy + h, ox:ox + w]
        if imp.silhouette_holes > 0:
            jump = np.zeros((h, w), dtype=bool)
            dzx = np.abs(np.diff(z, axis=1)) > 0.015
            dzy = np.abs(np.diff(z, axis=0)) > 0.015
            jump[:, 1:] |= dzx
            jump[:, :-1] |= dzx
            jump[1:, :] |= dzy
            jump[:-1, :] |= dzy
            oy, ox = int(self.rng.integers(16)), int(self.rng.integers(16))
            drop = jump & (self.edge_field[oy:oy + h, ox:ox + w] < imp.silhouette_holes)
            z = np.where(drop, 0.0, z)
        if np.isfinite(self.hole_thresh):
            n = self.hole_field.shape[0]
            oy, ox = int(self.rng.integers(n - h + 1)), int(self.rng.integers(n - w + 1))
            z = np.where(self.hole_field[oy:oy + h, ox:ox + w] > self.hole_thresh, 0.0, z)
        return z
