"""Renders from the ego camera: RGB, the hand mask and depth, with a numpy rasteriser (no GL).

The scene: the procedural hand with a forearm (bare or in a sleeve) above the dark
textured pad with its border, on a table; shaded skin with the participant's tone and
nails; a soft hand shadow; lighting per sequence with exposure drift and flicker. The
colour camera renders RGB and the hand mask; the depth sensor (its own pose and
intrinsics, :mod:`egopressdiff.data.synth.camera`) renders depth in uint16 mm (0 = hole).
Everything is drawn by :func:`egopressdiff.data.raster.rasterize`; the sensor
imperfections come from :class:`~egopressdiff.data.synth.imperfections.SensorNoise`.

Pressure cues: only those the real world has, at their real strength
    The renders show the *physical* hand, never the stored annotation, and force is
    visible only through weak, often hidden evidence:

    * **Nail and fingertip blanching** (RGB). Pressing a fingertip squeezes blood out
      of the nail bed and the skin around it, which pale; photoplethysmographic
      fingernail sensors read force from this colour change, linear up to about 1 N
      per finger and saturated beyond a few N. Here the nail bed and its surround move
      towards a pale, less red colour (:data:`BLANCHED_COLOUR`) by
      ``BLANCH_NAIL · tanh(F / 1.5 N)`` (F: that finger's force; at most 40 %, the pulp
      35 %, times the participant's factor 0.5-1.2), the other palmar skin by
      ``BLANCH_SKIN · tanh(p / 30 kPa)`` with its local pressure p. Strength: the nail's
      green and blue rise by about 6 % at 1 N and 16 % at saturation (less red, paler),
      under lighting that varies by more than that; the nail faces the ego camera in
      finger presses, the blanched pads face the pad and show at the silhouette only.
    * **Contact shadows** (RGB). Skin within a few mm of the pad occludes its ambient
      light: the pad darkens under and around it by up to :data:`CONTACT_SHADOW_STRENGTH`
      (coverage weighted by ``exp(-height / 3 mm)``, blurred 3 mm), on top of the soft
      cast shadow. It tells touching from hovering, not how hard.
    * **The flattened pad** (RGB, depth). The cameras see the skin flattened against
      the pad (:func:`~egopressdiff.data.synth.annotation.flattened_surface`): the
      flattening shows at the silhouette, and in depth as a change of the finger's
      shape near the pad of about the fingertip's compression (1-3 mm), at the level
      of the sensor's noise (about 1.2 mm at 0.5 m, more farther away) and its holes
      at silhouettes.

    Much of this is hidden from the ego camera: the palm and the pads face the pad,
    and camera-tilt events bring the head behind the hand, so one frame often does not
    show the force and the approach, ramp, hold and release over time have to carry it.
"""

from __future__ import annotations

import numpy as np

from egopressdiff.data import layout
from egopressdiff.data.hand import HandModel, rot_z
from egopressdiff.data.raster import PinholeCamera, rasterize
from egopressdiff.data.synth.camera import depth_pose
from egopressdiff.data.synth.imperfections import Imperfections, SensorNoise, noise_texture
from egopressdiff.data.synth.participants import Participant
from egopressdiff.data.synth.profiles import SmoothNoise

PAD_THICKNESS = 0.0065  # the table lies this far below the pad surface (+z)

TABLE_COLOURS = np.array([
    [0.66, 0.53, 0.38], [0.74, 0.74, 0.72], [0.50, 0.50, 0.52], [0.40, 0.29, 0.20], [0.56, 0.62, 0.66],
])
SLEEVE_COLOURS = np.array([
    [0.15, 0.18, 0.30], [0.55, 0.10, 0.12], [0.85, 0.85, 0.85], [0.20, 0.20, 0.20], [0.30, 0.45, 0.30],
    [0.75, 0.60, 0.35],
])
PAD_COLOUR = np.array([0.10, 0.10, 0.11])
PAD_BORDER_COLOUR = np.array([0.24, 0.24, 0.25])
WORLD_HALF = 0.30  # the background texture covers x, y in +-0.30 m
WORLD_RES = 0.002  # at 2 mm per texel (the shadow map at 4 mm)
_FOREARM_S = (0.05, 0.14, 0.26, 0.40)  # forearm ring distances from the wrist (m)
_FOREARM_GROWTH = (1.0, 1.12, 1.22, 1.28)
# pressure cues (module doc)
BLANCH_NAIL = 0.4  # nail bed and the skin around it: share of the way to BLANCHED_COLOUR at saturation
BLANCH_PULP = 0.35  # the fingertip pulp (mostly against the pad, seen at the silhouette)
BLANCH_SKIN = 0.25  # other palmar skin, by its local pressure
BLANCH_FORCE_N = 1.5  # tanh(F / 1.5 N): ~linear to ~1 N per finger, saturated beyond ~3 N
BLANCH_SKIN_KPA = 30.0
BLANCHED_COLOUR = np.array([0.96, 0.90, 0.84], dtype=np.float32)  # pale, less red: blood pressed out
CONTACT_SHADOW_RANGE_M = 0.015  # skin closer to the pad than this occludes its ambient light
CONTACT_SHADOW_DECAY_M = 0.003
CONTACT_SHADOW_BLUR_M = 0.003
CONTACT_SHADOW_STRENGTH = 0.5
# wrist ring (palm ring 0) vertices: 0 radial edge, 11 ulnar edge, 5/6 palmar middle, 14/15 dorsal middle
_RING_ULNAR, _RING_PALMAR, _RING_DORSAL = 11, 6, 15


class SequenceRenderer:
    """Per-sequence constants (appearance, textures, noise fields) and the per-frame renders."""

    def __init__(self, hand: HandModel, participant: Participant, color_cam: PinholeCamera,
                 depth_cam: PinholeCamera, rng: np.random.Generator, imperf: Imperfections):
        self.hand = hand
        self.cc = color_cam
        self.dc = depth_cam
        self.imperf = imperf
        self.rng = rng
        lv = imperf.lighting_variation
        # -- lighting
        el = np.deg2rad(rng.uniform(45.0, 80.0)) if lv > 0 else np.deg2rad(60.0)
        az = rng.uniform(0, 2 * np.pi) if lv > 0 else np.deg2rad(30.0)
        self.light = np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), -np.sin(el)])
        self.diffuse = float(0.75 + lv * rng.uniform(-0.12, 0.15))
        self.ambient = float(0.36 + lv * rng.uniform(-0.07, 0.08))
        tint = 1.0 + lv * rng.normal(0.0, 0.04, 3)
        self.tint = (tint / tint.mean()).astype(np.float32)
        self.exposure = SmoothNoise(rng, 1, min_period=20.0, max_period=80.0)
        self.flicker = rng.normal(0.0, 1.0, 4096)
        # -- skin albedo per vertex (palms lighter, nails pinker, slow blotches)
        skin = np.asarray(participant.skin, dtype=np.float64) * (1.0 + 0.03 * rng.normal(size=3) * lv)
        alb = np.tile(skin, (hand.num_vertices, 1))
        pal = hand.vertex_palmar
        alb[pal] = 0.68 * alb[pal] + 0.32 * np.array([0.93, 0.75, 0.67])
        nail = hand.vertex_tip & ~pal & (hand.vertex_part > 0)
        alb[nail] = 0.5 * alb[nail] + 0.5 * np.array([0.94, 0.80, 0.78])
        blot = rng.normal(size=hand.num_vertices)
        for _ in range(3):
            blot = hand.neighbour_mean @ blot
        alb *= (1.0 + 0.05 * blot / (blot.std() + 1e-9))[:, None]
        # -- forearm (sleeve or bare)
        n_ring = 18
        self.n_ring = n_ring
        sleeve = rng.uniform() < 0.5
        sleeve_col = SLEEVE_COLOURS[int(rng.integers(len(SLEEVE_COLOURS)))] * rng.uniform(0.85, 1.1)
        fa = np.tile(skin, (len(_FOREARM_S) * n_ring, 1))
        if sleeve:
            start = int(rng.integers(0, 2))
            fa[start * n_ring:] = sleeve_col
        self.albedo = np.clip(np.concatenate([alb, fa]), 0.0, 1.0).astype(np.float32)
        # -- blanching (see the module doc): how much each vertex pales at saturation
        finger = hand.vertex_part > 0
        self.blanch_nail = np.where(finger & hand.vertex_tip & ~pal, BLANCH_NAIL, 0.0)
        self.blanch_nail += np.where(finger & hand.vertex_tip & pal, BLANCH_PULP, 0.0)
        self.blanch_nail *= participant.blanching
        self.blanch_skin = BLANCH_SKIN * participant.blanching * pal
        self.vertex_finger = np.where(finger, hand.vertex_part - 1, -1)
        self.forearm_elev = np.deg2rad(rng.uniform(6.0, 16.0))
        out = np.deg2rad(rng.uniform(15.0, 35.0))  # the elbow is on the hand's side of the body
        self.forearm_out = -out if hand.side == "right" else out
        self.n_ring = n_ring
        wrist_ring = np.arange(n_ring)  # the hand's palm ring 0 is the wrist ring
        faces = []
        rings = [wrist_ring] + [hand.num_vertices + k * n_ring + np.arange(n_ring) for k in range(len(_FOREARM_S))]
        for a, b in zip(rings[:-1], rings[1:]):
            for k in range(n_ring):
                k2 = (k + 1) % n_ring
                faces += [(a[k], a[k2], b[k2]), (a[k], b[k2], b[k])]
        faces = np.asarray(faces, dtype=np.int64)
        self.faces = np.concatenate([hand.faces, faces])
        self.n_hand_faces = len(hand.faces)
        # outward winding for the forearm (back-face culling): check on the rest hand
        sv = self.scene_vertices(hand.rest_vertices, hand.rest_joints)
        a, b_, c = sv[faces[:, 0]], sv[faces[:, 1]], sv[faces[:, 2]]
        nrm = np.cross(b_ - a, c - a)
        centre = sv[hand.num_vertices:].mean(axis=0)
        axis_pt = sv[:n_ring].mean(axis=0)
        d = centre - axis_pt
        cen = (a + b_ + c) / 3.0
        foot = axis_pt + np.clip(((cen - axis_pt) @ d) / (d @ d), 0, None)[:, None] * d
        if np.mean(np.einsum("ij,ij->i", nrm, cen - foot) > 0) < 0.5:
            self.faces[self.n_hand_faces:] = faces[:, [0, 2, 1]]
        import scipy.sparse as sp

        nv = hand.num_vertices + len(_FOREARM_S) * n_ring
        F = len(self.faces)
        self._vf = sp.csr_matrix((np.ones(3 * F), (self.faces.reshape(-1), np.repeat(np.arange(F), 3))),
                                 shape=(nv, F))
        # -- textures and noise fields (sampled with per-frame offsets)
        self.table_colour = TABLE_COLOURS[int(rng.integers(len(TABLE_COLOURS)))] * rng.uniform(0.9, 1.1)
        # world albedo of the pad + table (WORLD_RES per texel over +-WORLD_HALF), sampled per pixel
        n = int(round(2 * WORLD_HALF / WORLD_RES))
        c = (np.arange(n) + 0.5) * WORLD_RES - WORLD_HALF
        wx, wy = np.meshgrid(c, c)  # [row = y, col = x]
        tex_t = noise_texture(rng, n, 6.0)
        grain = noise_texture(rng, n, 1.0)
        tex_p = noise_texture(rng, n, 0.7)
        on_pad = (np.abs(wx) <= layout.PAD_HALF_X) & (np.abs(wy) <= layout.PAD_HALF_Y)
        border = on_pad & ((np.abs(wx) > layout.PAD_HALF_X - 0.008) | (np.abs(wy) > layout.PAD_HALF_Y - 0.008))
        table = self.table_colour * (1.0 + 0.05 * tex_t + 0.02 * grain)[..., None]
        pad = np.where(border[..., None], PAD_BORDER_COLOUR, PAD_COLOUR) * (1.0 + 0.06 * tex_p)[..., None]
        # beyond the +-WORLD_HALF window the table continues as a periodic texture (appended rows)
        m = 128
        far = self.table_colour * (1.0 + 0.05 * noise_texture(rng, m, 6.0) + 0.02 * noise_texture(rng, m, 1.0))[..., None]
        self.world_albedo = np.concatenate([np.where(on_pad[..., None], pad, table).reshape(-1, 3),
                                            far.reshape(-1, 3)]).astype(np.float32)
        self.world_n = n
        self.far_n = m
        self.noise = SensorNoise(rng, imperf, (color_cam.width, color_cam.height),
                                 (depth_cam.width, depth_cam.height))
        self.shadow_res = 3 * WORLD_RES  # 6 mm
        self.shadow_n = n // 3

    # -- geometry ------------------------------------------------------------------------
    def scene_vertices(self, v: np.ndarray, joints: np.ndarray) -> np.ndarray:
        """Hand vertices + forearm rings (world).

        The forearm leaves the wrist backwards and outwards (towards the elbow on the
        hand's side of the body) and rises at ``forearm_elev``. Each forearm ring is the
        wrist ring's own cross-section (in its radial/palmar frame) carried onto the plane
        perpendicular to the forearm axis, so the forearm follows the hand's roll without
        twisting or collapsing.
        """
        n = self.n_ring
        ring = v[:n]
        centre = ring.mean(axis=0)
        back = joints[0] - joints[9]  # middle MCP -> wrist
        back[2] = 0.0
        nb = np.linalg.norm(back)
        back = back / nb if nb > 1e-9 else np.array([1.0, 0.0, 0.0])
        back = rot_z(self.forearm_out)[:2, :2] @ back[:2]
        axis = np.array([np.cos(self.forearm_elev) * back[0], np.cos(self.forearm_elev) * back[1],
                         -np.sin(self.forearm_elev)])
        off = ring - centre
        e1 = ring[0] - ring[_RING_ULNAR]  # across the wrist (radial edge - ulnar edge)
        e2 = ring[_RING_PALMAR] - ring[_RING_DORSAL]  # palmar - dorsal
        e1 /= max(np.linalg.norm(e1), 1e-12)
        e2 -= (e2 @ e1) * e1
        e2 /= max(np.linalg.norm(e2), 1e-12)
        x, z = off @ e1, off @ e2  # the wrist cross-section in its own frame
        f1 = e1 - (e1 @ axis) * axis
        if np.linalg.norm(f1) < 1e-3:  # degenerate: fall back to a horizontal frame
            f1 = np.cross(axis, [0.0, 0.0, 1.0])
        f1 /= np.linalg.norm(f1)
        f2 = np.cross(axis, f1)
        if f2 @ e2 < 0:
            f2 = -f2
        section = x[:, None] * f1 + z[:, None] * f2
        extra = [centre + s * axis + g * section for s, g in zip(_FOREARM_S, _FOREARM_GROWTH)]
        return np.concatenate([v] + extra)

    def normals(self, sv: np.ndarray) -> np.ndarray:
        a, b, c = sv[self.faces[:, 0]], sv[self.faces[:, 1]], sv[self.faces[:, 2]]
        n = self._vf @ np.cross(b - a, c - a)
        return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-15)

    # -- renders -----------------------------------------------------------------------------
    @staticmethod
    def _rays_world(cam: PinholeCamera, R, T):
        """Camera centre C (3,) and world ray directions (dx, dy, dz), each (H, W) float32.

        Pixel rays are (x(col), y(row), 1) in the camera frame, so R^T r separates into
        outer sums of a column term and a row term (no per-pixel matrix product)."""
        Rf = np.asarray(R, dtype=np.float32)
        C = -(Rf.T @ np.asarray(T, dtype=np.float32))
        xs = ((np.arange(cam.width, dtype=np.float32) - np.float32(cam.cx)) / np.float32(cam.fx))[None, :]
        ys = ((np.arange(cam.height, dtype=np.float32) - np.float32(cam.cy)) / np.float32(cam.fy))[:, None]
        d = [(xs * Rf[0, c] + Rf[2, c]) + ys * Rf[1, c] for c in range(3)]
        return C, d

    def _background(self, cam: PinholeCamera, R, T) -> np.ndarray:
        """Depth (H, W) of the pad (z = 0) and, around it, the table (z = PAD_THICKNESS); inf = none."""
        C, (dx, dy, dz) = self._rays_world(cam, R, T)
        down = dz > 1e-6
        inv = np.where(down, 1.0 / np.where(down, dz, 1.0), 0.0).astype(np.float32)
        t0 = -C[2] * inv
        x0 = C[0] + dx * t0
        y0 = C[1] + dy * t0
        on_pad = (np.abs(x0) <= layout.PAD_HALF_X) & (np.abs(y0) <= layout.PAD_HALF_Y)
        t = np.where(on_pad, t0, t0 + np.float32(PAD_THICKNESS) * inv)
        return np.where(down & (t > 0), t, np.inf).astype(np.float32)

    def _shadow(self, sv: np.ndarray) -> np.ndarray:
        """Soft hand shadow on the pad plane from the directional light, (N, N) in [0, 1]."""
        from scipy.ndimage import gaussian_filter

        lt = self.light
        tpar = sv[:, 2] / lt[2]
        q = sv - tpar[:, None] * lt
        n = self.shadow_n
        res = self.shadow_res
        pts = np.stack([q[:, 0], q[:, 1], np.ones(len(q))], axis=1)
        cam = PinholeCamera(1.0 / res, 1.0 / res, (n - 1) / 2.0, (n - 1) / 2.0, n, n)
        fr = rasterize(pts, self.faces, cam)
        height = float(np.clip(-sv[:self.hand.num_vertices, 2].mean(), 0.0, 0.2))
        return gaussian_filter(fr.mask.astype(np.float32), 0.6 + height / 0.02, truncate=2.0)

    def _vertex_colours(self, pc: np.ndarray, nc: np.ndarray, R: np.ndarray, albedo: np.ndarray) -> np.ndarray:
        """Shaded colour of every scene vertex (two-sided Lambert + Blinn-Phong, camera frame)."""
        view = -pc / np.linalg.norm(pc, axis=1, keepdims=True)
        ndv = np.einsum("ij,ij->i", nc, view)
        nc = nc * np.where(ndv < 0, -1.0, 1.0)[:, None]
        lc = R @ self.light
        lam = np.maximum(nc @ lc, 0.0)
        hv = view + lc
        hv /= np.maximum(np.linalg.norm(hv, axis=1, keepdims=True), 1e-9)
        spec = np.maximum(np.einsum("ij,ij->i", nc, hv), 0.0) ** 24
        col = albedo * (self.ambient + self.diffuse * lam)[:, None] + (0.12 * self.diffuse * spec)[:, None]
        return col.astype(np.float32)

    def blanched_albedo(self, vertex_kpa: np.ndarray | None, finger_force: np.ndarray | None) -> np.ndarray:
        """Scene albedo of one frame: fingertips and nails pale with their finger's force, the
        palmar skin with its local pressure (see the module doc)."""
        if vertex_kpa is None or finger_force is None or not np.any(vertex_kpa > 0):
            return self.albedo
        f = np.tanh(np.asarray(finger_force, np.float64) / BLANCH_FORCE_N)
        b = self.blanch_nail * np.where(self.vertex_finger >= 0, f[np.maximum(self.vertex_finger, 0)], 0.0)
        b = np.maximum(b, self.blanch_skin * np.tanh(np.asarray(vertex_kpa, np.float64) / BLANCH_SKIN_KPA))
        alb = self.albedo.copy()
        n = self.hand.num_vertices
        alb[:n] += (b[:, None] * (BLANCHED_COLOUR - alb[:n])).astype(np.float32)
        return alb

    def _contact_shadow(self, v: np.ndarray):
        """Ambient occlusion of the pad by skin close to it: (origin ix, iy, map) on the world texel grid, or None."""
        from scipy.ndimage import gaussian_filter

        h = -v[:, 2]
        near = h < CONTACT_SHADOW_RANGE_M
        if not near.any():
            return None
        q = v[near]
        sc = 1.0 / WORLD_RES
        gx, gy = (q[:, 0] + WORLD_HALF) * sc - 0.5, (q[:, 1] + WORLD_HALF) * sc - 0.5
        pad = 8
        x0, y0 = int(np.floor(gx.min())) - pad, int(np.floor(gy.min())) - pad
        nx, ny = int(np.ceil(gx.max())) - x0 + pad + 1, int(np.ceil(gy.max())) - y0 + pad + 1
        # each nearby vertex covers its share of skin area, weighted by how close it is
        w = self.hand.vertex_areas(v)[near] / WORLD_RES**2 * np.exp(-h[near] / CONTACT_SHADOW_DECAY_M)
        cx, cy = gx - x0, gy - y0
        c0, r0 = np.floor(cx).astype(np.int64), np.floor(cy).astype(np.int64)
        fx, fy = cx - c0, cy - r0
        idx = np.concatenate([r0 * nx + c0, r0 * nx + c0 + 1, (r0 + 1) * nx + c0, (r0 + 1) * nx + c0 + 1])
        val = np.concatenate([w * (1 - fx) * (1 - fy), w * fx * (1 - fy), w * (1 - fx) * fy, w * fx * fy])
        cover = np.bincount(idx, weights=val, minlength=nx * ny).reshape(ny, nx)
        cover = gaussian_filter(cover, CONTACT_SHADOW_BLUR_M / WORLD_RES, truncate=2.5)
        return x0, y0, (1.0 - np.exp(-cover)).astype(np.float32)

    def render(self, i: int, v: np.ndarray, joints: np.ndarray, R: np.ndarray, T: np.ndarray,
               blur_px: tuple[float, float] = (0.0, 0.0), vertex_kpa: np.ndarray | None = None,
               finger_force: np.ndarray | None = None):
        """-> rgb uint8 (H, W, 3), depth uint16 (h, w) mm, mask uint8 (H, W) 0/255, visible (778,) bool.

        ``v`` is the surface the cameras see (the skin flattened against the pad);
        ``vertex_kpa`` (778,) and ``finger_force`` (5,) newtons drive the blanching.
        """
        imp = self.imperf
        sv = self.scene_vertices(v, joints)
        n_world = self.normals(sv)
        # ---------------- colour camera
        cam = self.cc
        H, W = cam.height, cam.width
        pc = sv @ R.T + T
        fr = rasterize(pc, self.faces, cam, cull_back=True)
        # background: the pad plane z = 0 (the table's 6.5 mm step is invisible at this scale)
        C, (dx, dy, dz) = self._rays_world(cam, R, T)
        down = dz > 1e-6
        tb = np.where(down, -C[2] / np.where(down, dz, 1.0), np.inf).astype(np.float32)
        tt = np.where(down, tb, 0.0)
        n = self.world_n
        sc = np.float32(1.0 / WORLD_RES)
        ix = np.clip(((C[0] + WORLD_HALF) * sc + (dx * sc) * tt), -1e6, 1e6).astype(np.int64)
        iy = np.clip(((C[1] + WORLD_HALF) * sc + (dy * sc) * tt), -1e6, 1e6).astype(np.int64)
        flat = (iy * n + ix).reshape(-1)
        outside = ((ix < 0) | (ix >= n) | (iy < 0) | (iy >= n)).reshape(-1)
        if outside.any():  # the far table: a periodic texture stored after the window
            m = self.far_n
            flat[outside] = n * n + (iy.reshape(-1)[outside] % m) * m + (ix.reshape(-1)[outside] % m)
        mesh = fr.face >= 0
        mesh &= fr.depth < tb
        lam_plane = max(0.0, float(-self.light[2]))
        shade_bg = self.ambient + self.diffuse * lam_plane
        sh = self._shadow(sv).reshape(-1)
        ns = self.shadow_n
        shadow = np.take(sh, np.clip(iy // 3, 0, ns - 1) * ns + np.clip(ix // 3, 0, ns - 1))
        k = np.float32(0.55 * self.diffuse * lam_plane)
        img = np.take(self.world_albedo, flat, axis=0).reshape(H, W, 3)
        lv = imp.lighting_variation
        gain = 1.0 + lv * (0.07 * float(self.exposure(float(i))[0]) + 0.015 * self.flicker[i % 4096])
        colour_gain = (self.tint * np.float32(gain * 255.0)).astype(np.float32)  # exposure, tint, to 0..255
        bg = np.float32(shade_bg) - k * shadow
        cs = self._contact_shadow(v)
        if cs is not None:  # the pad darkens under skin that nearly touches it
            x0, y0, ao = cs
            lx, ly = ix - x0, iy - y0
            inside = (lx >= 0) & (lx < ao.shape[1]) & (ly >= 0) & (ly < ao.shape[0])
            bg[inside] *= np.float32(1.0) - np.float32(CONTACT_SHADOW_STRENGTH) * ao[ly[inside], lx[inside]]
        img *= bg[..., None]
        img *= colour_gain
        # mesh shading: Lambert + Blinn-Phong per vertex (camera frame), interpolated per pixel
        sel = mesh.reshape(-1)[fr.pix]
        idx = fr.pix[sel]
        if len(idx):
            b = fr.pix_bary[sel]
            tri = self.faces[fr.pix_face[sel]]
            vcol = self._vertex_colours(pc, n_world @ R.T, R, self.blanched_albedo(vertex_kpa, finger_force))
            vcol *= colour_gain
            col = (np.take(vcol, tri[:, 0], axis=0) * b[:, 0:1] + np.take(vcol, tri[:, 1], axis=0) * b[:, 1:2]
                   + np.take(vcol, tri[:, 2], axis=0) * b[:, 2:3])
            img.reshape(-1, 3)[idx] = col
        img = self.noise.colour(img, blur_px)  # motion blur, sensor noise
        img += np.float32(0.5)
        np.clip(img, 0.0, 255.0, out=img)
        rgb = img.astype(np.uint8)
        mask = ((fr.face >= 0) & (fr.face < self.n_hand_faces) & mesh).astype(np.uint8) * 255
        # visibility of the hand's vertices from the ego camera
        zbuf = np.minimum(np.where(mesh, fr.depth, np.inf), tb)
        u = np.rint(cam.fx * pc[:self.hand.num_vertices, 0] / pc[:self.hand.num_vertices, 2] + cam.cx)
        vv = np.rint(cam.fy * pc[:self.hand.num_vertices, 1] / pc[:self.hand.num_vertices, 2] + cam.cy)
        inside = (u >= 0) & (u < W) & (vv >= 0) & (vv < H) & (pc[:self.hand.num_vertices, 2] > 0)
        visible = np.zeros(self.hand.num_vertices, dtype=bool)
        ui, vi = u[inside].astype(np.int64), vv[inside].astype(np.int64)
        visible[inside] = pc[:self.hand.num_vertices, 2][inside] <= zbuf[vi, ui] + 0.004
        # ---------------- depth sensor
        depth = self._depth(sv, R, T)
        return rgb, depth, mask, visible

    def _depth(self, sv: np.ndarray, R: np.ndarray, T: np.ndarray) -> np.ndarray:
        cam = self.dc
        Rd, Td = depth_pose(R, T)
        fr = rasterize(sv @ Rd.T + Td, self.faces, cam, cull_back=True)
        tb = self._background(cam, Rd, Td)
        z = np.minimum(fr.depth, tb)
        valid = np.isfinite(z) & (z > 0.05) & (z < 4.0)
        z = np.where(valid, z, 0.0).astype(np.float32)
        z = self.noise.depth(z)
        mm = np.rint(np.clip(z, 0.0, 65.535) * 1000.0)
        mm[~valid] = 0
        return mm.astype(np.uint16)

