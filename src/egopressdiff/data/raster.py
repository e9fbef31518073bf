"""The package's one rasteriser: a small vectorised numpy z-buffer (no GL).

No OpenGL (or any GPU API) is available on the machines this must run on, so
triangles are rasterised with numpy: each triangle's rows are expanded into
spans and each span into its pixels, all triangles at once; barycentric
coordinates are computed in bulk and a z-buffer picks the nearest triangle per
pixel (``np.minimum.at``). With ~1.5k small triangles per hand and a few hundred
pixels each this takes a few milliseconds per image.

Three uses, one implementation (:func:`rasterize_screen`): the synthetic
renders (perspective, :func:`rasterize`), the UV atlas' texel maps
(:mod:`egopressdiff.data.atlas`) and the pictures of pressure on the 3D hand
(:mod:`egopressdiff.evaluation.render`, orthographic).

Conventions: OpenCV pinhole cameras (``x`` right, ``y`` down, ``z`` forward),
pixel centres at integer coordinates (pixel ``(row, col)`` samples image point
``(col, row)``), depth = camera-space ``z`` (metres). Barycentrics are
perspective-correct for perspective renders.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from egopressdiff.data.calibration import ColorIntrinsics


class PinholeCamera(ColorIntrinsics):
    """Pinhole intrinsics (pixels) and image size: the reader's :class:`ColorIntrinsics`, plus
    what the renderer needs (construction from a field of view, per-pixel rays)."""

    @staticmethod
    def from_fov(width: int, height: int, hfov_deg: float) -> PinholeCamera:
        f = 0.5 * width / np.tan(np.deg2rad(hfov_deg) / 2.0)
        return PinholeCamera(f, f, (width - 1) / 2.0, (height - 1) / 2.0, int(width), int(height))

    def rays(self) -> np.ndarray:
        """Camera-frame ray directions (x/z, y/z, 1) of every pixel, (H, W, 3) float32 (cached)."""
        key = (self.fx, self.fy, self.cx, self.cy, self.width, self.height)
        r = _RAYS.get(key)
        if r is None:
            v, u = np.mgrid[0:self.height, 0:self.width].astype(np.float32)
            r = np.stack([(u - self.cx) / self.fx, (v - self.cy) / self.fy, np.ones_like(u)], axis=-1)
            _RAYS[key] = r
        return r


_RAYS: dict = {}


@dataclass
class Fragments:
    """Per-pixel result of rasterising one mesh.

    ``face`` (H, W) int32 (-1 = none) and ``depth`` (H, W) float32 (inf = none) as images;
    the covered pixels' flat indices ``pix`` (K,), their faces ``pix_face`` (K,) and
    perspective-correct barycentrics ``pix_bary`` (K, 3) in sparse form.
    """

    face: np.ndarray
    depth: np.ndarray
    pix: np.ndarray
    pix_face: np.ndarray
    pix_bary: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        return self.face >= 0

    @property
    def bary(self) -> np.ndarray:
        """Dense (H, W, 3) barycentrics (zeros where nothing is drawn)."""
        H, W = self.face.shape
        out = np.zeros((H * W, 3), dtype=np.float32)
        out[self.pix] = self.pix_bary
        return out.reshape(H, W, 3)


def project(points_cam: np.ndarray, cam: PinholeCamera) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Camera-frame points (N, 3) -> (u, v, z) float32; z <= 0 points give u = v = nan."""
    p = np.asarray(points_cam, dtype=np.float32)
    z = p[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        iz = np.where(z > 1e-6, 1.0 / z, np.nan).astype(np.float32)
    return (np.float32(cam.fx) * p[:, 0] * iz + np.float32(cam.cx),
            np.float32(cam.fy) * p[:, 1] * iz + np.float32(cam.cy), z)


def _empty(H: int, W: int) -> Fragments:
    return Fragments(np.full((H, W), -1, dtype=np.int32), np.full((H, W), np.inf, dtype=np.float32),
                     np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros((0, 3), np.float32))


def rasterize(points_cam: np.ndarray, faces: np.ndarray, cam: PinholeCamera, near: float = 0.02,
              cull_back: bool = False, max_pixels: int = 20_000_000) -> Fragments:
    """Z-buffer rasterisation of a triangle mesh given in camera coordinates (perspective).

    The points are projected with ``cam`` and drawn by :func:`rasterize_screen` with
    perspective-correct barycentrics. ``cull_back`` drops triangles seen from behind
    (outward, counter-clockwise winding), halving the work for closed meshes. Faces with a
    vertex closer than ``near`` are dropped (the scenes never put geometry that close).
    """
    u, v, z = project(points_cam, cam)
    faces = np.asarray(faces)
    with np.errstate(invalid="ignore"):
        in_front = (z[faces[:, 0]] > near) & (z[faces[:, 1]] > near) & (z[faces[:, 2]] > near)
    return rasterize_screen(u, v, z, faces, cam.width, cam.height, perspective=True, cull_back=cull_back,
                            face_ok=in_front, max_pixels=max_pixels)


def rasterize_screen(u: np.ndarray, v: np.ndarray, depth: np.ndarray, faces: np.ndarray, width: int,
                     height: int, perspective: bool = False, cull_back: bool = False,
                     face_ok: np.ndarray | None = None, edge_tolerance: float = 1e-4,
                     max_pixels: int = 20_000_000) -> Fragments:
    """Z-buffer rasterisation of triangles whose vertices are already in pixel coordinates.

    The one rasteriser of the package: the synthetic renders (through :func:`rasterize`),
    the UV atlas' texel maps and the pictures of pressure on the 3D hand all use it.

    ``u`` (column) and ``v`` (row) per vertex, pixel centres at integers; ``depth`` per vertex
    (smaller = nearer). With ``perspective`` it is the camera-space ``z`` and the barycentrics
    are perspective-correct (depth interpolated as ``1/z``); otherwise (orthographic views, UV
    charts) both are interpolated linearly. A pixel is covered when its centre lies in the
    triangle (centres within ``edge_tolerance`` pixels of an edge included); where depths tie the face listed last wins
    (so equal depths give "later face wins"). Arithmetic stays in the inputs' float type.

    Scanline form, vectorised over all triangles at once: each triangle's rows (pixel
    centres) are expanded into (triangle, row) spans and each span into its pixels, so the
    work is proportional to the covered pixels (not to bounding boxes, which are huge for
    long thin triangles). ``face_ok`` (F,) bool drops faces beforehand.
    """
    H, W = int(height), int(width)
    dt = np.result_type(np.asarray(u).dtype, np.asarray(v).dtype, np.asarray(depth).dtype, np.float32)
    u, v, z = (np.asarray(a, dtype=dt) for a in (u, v, depth))
    one = dt.type(1.0)
    faces = np.asarray(faces)
    i0, i1, i2 = faces[:, 0], faces[:, 1], faces[:, 2]
    u0, u1, u2 = u[i0], u[i1], u[i2]
    v0, v1, v2 = v[i0], v[i1], v[i2]
    z0, z1, z2 = z[i0], z[i1], z[i2]
    e1u, e1v, e2u, e2v = u1 - u0, v1 - v0, u2 - u0, v2 - v0
    den = e1u * e2v - e2u * e1v
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(den)
        if face_ok is not None:
            ok &= face_ok
        ok &= (den < -1e-9) if cull_back else (np.abs(den) > 1e-9)
    vmin = np.minimum(np.minimum(v0, v1), v2)
    vmax = np.maximum(np.maximum(v0, v1), v2)
    umin = np.minimum(np.minimum(u0, u1), u2)
    umax = np.maximum(np.maximum(u0, u1), u2)
    with np.errstate(invalid="ignore"):
        ok &= (umax >= 0) & (umin <= W - 1) & (vmax >= 0) & (vmin <= H - 1)
    fid = np.nonzero(ok)[0]
    if len(fid) == 0:
        return _empty(H, W)
    r0 = np.clip(np.ceil(vmin[fid]), 0, H).astype(np.int64)
    r1 = np.clip(np.floor(vmax[fid]), -1, H - 1).astype(np.int64)
    nrow = np.maximum(r1 - r0 + 1, 0)
    total_rows = int(nrow.sum())
    if total_rows == 0:
        return _empty(H, W)
    # (triangle, row) spans: intersect each row with the three edges
    t = fid[np.repeat(np.arange(len(fid)), nrow)]
    row = (np.arange(total_rows) - np.repeat(np.cumsum(nrow) - nrow, nrow) + np.repeat(r0, nrow)).astype(dt)
    xl = np.full(total_rows, np.inf, dtype=dt)
    xr = np.full(total_rows, -np.inf, dtype=dt)
    for (ua, va), (ub, vb) in (((u0, v0), (u1, v1)), ((u1, v1), (u2, v2)), ((u2, v2), (u0, v0))):
        ya, yb = va[t], vb[t]
        xa, xb = ua[t], ub[t]
        dy = yb - ya
        with np.errstate(divide="ignore", invalid="ignore"):
            q = (row - ya) / dy
            xi = xa + q * (xb - xa)
        cross = (dy != 0) & (q >= -1e-6) & (q <= 1.000001)
        np.minimum(xl, np.where(cross, xi, np.inf), out=xl)
        np.maximum(xr, np.where(cross, xi, -np.inf), out=xr)
    cs = np.clip(np.ceil(xl - edge_tolerance), 0, W).astype(np.int64)
    ce = np.clip(np.floor(xr + edge_tolerance), -1, W - 1).astype(np.int64)
    ncol = np.maximum(ce - cs + 1, 0)
    total = int(ncol.sum())
    if total == 0:
        return _empty(H, W)
    if total > max_pixels:
        raise ValueError(f"rasterize: {total} fragments exceed max_pixels={max_pixels}")
    span = np.repeat(np.arange(total_rows), ncol)
    px = np.arange(total) - np.repeat(np.cumsum(ncol) - ncol, ncol) + np.repeat(cs, ncol)
    py = row[span].astype(np.int64)
    f = t[span]
    # barycentrics (screen space, clamped to the triangle), then perspective-correct
    pxf = px.astype(dt) - u0[f]
    pyf = py.astype(dt) - v0[f]
    inv = one / den[f]
    w1 = np.clip((pxf * e2v[f] - e2u[f] * pyf) * inv, 0.0, 1.0)
    w2 = np.clip((e1u[f] * pyf - pxf * e1v[f]) * inv, 0.0, 1.0)
    w0 = np.clip(1.0 - w1 - w2, 0.0, 1.0)
    if perspective:
        w0 /= z0[f]
        w1 /= z1[f]
        w2 /= z2[f]
        s = w0 + w1 + w2
        depth = one / s
    else:
        depth = w0 * z0[f] + w1 * z1[f] + w2 * z2[f]
    pix = py * W + px
    depth_img = np.full(H * W, np.inf, dtype=dt)
    np.minimum.at(depth_img, pix, depth)
    win = np.nonzero(depth <= depth_img[pix])[0]
    pix_w = pix[win]
    # keep one fragment per pixel (ties: the last one written)
    face_img = np.full(H * W, -1, dtype=np.int32)
    face_img[pix_w] = win
    keep = face_img[pix_w] == win
    win, pix_w = win[keep], pix_w[keep]
    face_img[pix_w] = f[win]
    if perspective:
        dw = depth[win]
        bary = np.stack([w0[win] * dw, w1[win] * dw, w2[win] * dw], axis=1)
    else:
        bary = np.stack([w0[win], w1[win], w2[win]], axis=1)
    return Fragments(face_img.reshape(H, W), depth_img.astype(np.float32, copy=False).reshape(H, W), pix_w,
                     f[win].astype(np.int32), bary)


def interpolate(frags: Fragments, faces: np.ndarray, vertex_attr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel attribute (K, C) at the covered pixels and their flat indices (K,)."""
    tri = np.asarray(faces)[frags.pix_face]
    b = frags.pix_bary
    a = np.asarray(vertex_attr)
    out = a[tri[:, 0]] * b[:, 0:1] + a[tri[:, 1]] * b[:, 1:2] + a[tri[:, 2]] * b[:, 2:3]
    return out, frags.pix


def plane_hits(cam: PinholeCamera, R: np.ndarray, T: np.ndarray, plane_z: float) -> tuple[np.ndarray, np.ndarray]:
    """Intersect every pixel ray of a camera (world->camera ``R``, ``T``) with the world plane z = plane_z.

    Returns (world points (H, W, 3), camera depth (H, W)); depth is inf where the ray misses
    (parallel or behind).
    """
    rays = cam.rays()  # camera frame, z = 1
    Rf = np.asarray(R, dtype=np.float32)
    C = -(Rf.T @ np.asarray(T, dtype=np.float32))  # camera centre in world
    d = rays @ Rf  # world directions (row-vector form of R^T r)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (np.float32(plane_z) - C[2]) / d[..., 2]
    t = np.where(np.isfinite(t) & (t > 0), t, np.inf).astype(np.float32)
    pts = C + d * np.where(np.isfinite(t), t, 0.0)[..., None]
    return pts, t


def box_blur_1d(img: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Cheap linear motion blur: the mean of copies shifted along (dx, dy) pixels (edges clamped)."""
    length = float(np.hypot(dx, dy))
    n = int(np.clip(np.ceil(length), 1, 15))
    if n <= 1:
        return img
    offs = [(int(round((k / (n - 1) - 0.5) * dx)), int(round((k / (n - 1) - 0.5) * dy))) for k in range(n)]
    m = max(max(abs(ox), abs(oy)) for ox, oy in offs)
    H, W = img.shape[:2]
    pad = [(m, m), (m, m)] + [(0, 0)] * (img.ndim - 2)
    padded = np.pad(img, pad, mode="edge")
    acc = np.zeros(img.shape, dtype=np.float32)
    for ox, oy in offs:
        acc += padded[m + oy:m + oy + H, m + ox:m + ox + W]
    return acc * np.float32(1.0 / n)
