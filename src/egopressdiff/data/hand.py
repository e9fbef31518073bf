"""A procedural, articulated hand mesh with exactly 778 vertices and 21 joints.

The synthetic dataset cannot use MANO (licensed), so it uses this hand instead:
deterministic geometry built from a few parametric surfaces, posed with linear
blend skinning, with a UV atlas in separate charts. Its vertex count (778) and
joint order match MANO / EgoPressure so every downstream array has the real
shape.

Frames and units (metres):

* **Hand-local frame** of the *right* hand at rest: origin at the wrist joint,
  ``+y`` from the wrist towards the fingers, ``+z`` out of the palm (the palmar
  normal), ``+x`` towards the thumb (``x = y × z``). The hand is flat with the
  fingers slightly fanned.
* The **left** hand is the exact mirror: ``x`` negated, every face's winding
  flipped, the same UV layout (same ``uvs``, ``uv_faces`` flipped like ``faces``).
* :meth:`HandModel.pose` articulates the local mesh (per-joint flexion,
  abduction, twist) and then applies the pose's global rotation and
  translation: ``p = R · p_local + transl``. With the identity rotation and zero
  translation the output is in the hand-local frame.

Geometry: the palm is a tube of superelliptic cross-sections from the wrist to
the knuckle line (palmar half flatter, with thenar/hypothenar pads and a shallow
hollow), closed at the wrist by a cap and at the knuckles by a thin web; every
finger (and the thumb, whose first segment is the thenar metacarpal) is a tube
of elliptic rings around its bones ending in a rounded tip whose pole is the
fingertip joint. Vertex budget: palm 18x9 + wrist centre (163), index / middle
/ ring 10x13 + pole (131 each), pinky 10x11 + pole (111), thumb 10x11 + pole
(111): 778.

Joints (EgoPressure order): 0 wrist; 1-4 thumb (CMC, MCP, IP, tip);
5-8 index, 9-12 middle, 13-16 ring, 17-20 pinky (MCP, PIP, DIP, tip).

UV atlas (unit square, separate charts, ~2 texel gaps at 224x224): the palmar
side of the palm (the largest chart, top left), the back of the palm (below
it), a thin web strip and the wrist cap (bottom left), and one vertical strip
per finger on the right half (thumb, index, middle, ring, pinky from left to
right; base at the bottom, tip at the top). Finger charts are unwrapped with
the seam on the back of the finger and the palmar side in the middle of the
strip, which gets ~70 % of the strip's width: contact happens on the pads,
so they get the texels.

Shape variation (per participant) is a few scale factors (:class:`HandShape`);
the mesh topology and the UV layout do not depend on them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

from egopressdiff.data import layout
from egopressdiff.data.atlas import UVAtlas

NUM_VERTICES = layout.NUM_VERTICES
NUM_JOINTS = layout.NUM_JOINTS
FINGERS = layout.FINGERS  # thumb, index, middle, ring, pinky

# --- parts -------------------------------------------------------------------
PART_PALM = 0  # palm (palmar + dorsal + web + wrist cap); fingers are 1 + finger index
PART_NAMES = ("palm",) + FINGERS

# --- mesh budget -----------------------------------------------------------------
_PALM_PALMAR_SEGS = 11  # segments across the palmar half of a palm ring
_PALM_DORSAL_SEGS = 7  # segments across the dorsal half
_PALM_AROUND = _PALM_PALMAR_SEGS + _PALM_DORSAL_SEGS  # vertices per palm ring (18)
_PALM_RINGS = 9
_FINGER_AROUND = 10
_FINGER_RINGS = {"thumb": 11, "index": 13, "middle": 13, "ring": 13, "pinky": 11}
_CAP_RINGS = 3  # rings on the rounded tip (then the pole)
_CAP_ANGLES = np.deg2rad([30.0, 55.0, 75.0])

# --- rest skeleton of the default right hand (metres) ------------------------------
# finger: (MCP x, MCP y, fan angle deg towards +x, phalanx lengths, base radius, tip radius)
_FINGER_SPECS = {
    "index": (0.0265, 0.0880, 3.0, (0.0400, 0.0240, 0.0200), 0.0097, 0.0081),
    "middle": (0.0065, 0.0920, 0.0, (0.0430, 0.0265, 0.0205), 0.0100, 0.0083),
    "ring": (-0.0130, 0.0880, -3.0, (0.0400, 0.0250, 0.0195), 0.0094, 0.0078),
    "pinky": (-0.0305, 0.0790, -8.0, (0.0320, 0.0190, 0.0180), 0.0085, 0.0069),
}
_FINGER_BASE_INSET = 0.0120  # tubes start this far inside the palm, behind the MCP
_FINGER_THICKNESS = 0.86  # ring half-thickness / half-width
# thumb: CMC position, direction (deg in the palm plane towards +x, deg out of it towards +z)
_THUMB_CMC = np.array([0.0200, 0.0190, 0.0040])
_THUMB_YAW, _THUMB_PITCH = 40.0, -2.0
_THUMB_LENGTHS = (0.0400, 0.0320, 0.0270)
_THUMB_RADII = (0.0125, 0.0098, 0.0090, 0.0080)  # at CMC, MCP, IP, cap start
_THUMB_BASE_INSET = 0.0080

# --- UV layout (u0, v0, u1, v1) --------------------------------------------------------
_UV_PALMAR = (0.010, 0.450, 0.510, 0.990)
_UV_DORSAL = (0.010, 0.140, 0.510, 0.430)
_UV_WEB = (0.250, 0.015, 0.510, 0.120)
_UV_WRIST = (0.010, 0.010, 0.230, 0.125)
_UV_FINGER_U0 = 0.530
_UV_FINGER_WIDTHS = {"thumb": 0.090, "index": 0.088, "middle": 0.088, "ring": 0.086, "pinky": 0.072}
_UV_FINGER_GAP = 0.008
_UV_FINGER_V = (0.010, 0.990)
_UV_PALMAR_SHARE = 0.40  # warp strength: the palmar half of a finger strip gets (1+a)/2 of its width


@dataclass(frozen=True)
class HandShape:
    """Per-participant shape: scale factors around the default hand (all 1.0 = default).

    ``scale`` scales everything; ``palm_width`` the palm and finger spacing across;
    ``finger_length`` the phalanges; ``thickness`` the finger/palm radii.
    """

    scale: float = 1.0
    palm_width: float = 1.0
    finger_length: float = 1.0
    thickness: float = 1.0

    def betas(self) -> np.ndarray:
        """The 10 stored ``betas``: (scale, palm_width, finger_length, thickness) - 1, then zeros."""
        b = np.zeros(10, dtype=np.float32)
        b[:4] = [self.scale - 1.0, self.palm_width - 1.0, self.finger_length - 1.0, self.thickness - 1.0]
        return b

    @staticmethod
    def random(rng: np.random.Generator) -> HandShape:
        return HandShape(
            scale=float(rng.uniform(0.92, 1.08)),
            palm_width=float(rng.uniform(0.94, 1.06)),
            finger_length=float(rng.uniform(0.94, 1.06)),
            thickness=float(rng.uniform(0.92, 1.08)),
        )


# ----------------------------------------------------------------------------- rotations
# Rotations come from scipy; these name the three elementary ones the construction uses.
def rot_x(a: float) -> np.ndarray:
    """Rotation matrix (3, 3) by ``a`` radians about x."""
    return Rotation.from_euler("x", a).as_matrix()


def rot_y(a: float) -> np.ndarray:
    """Rotation matrix (3, 3) by ``a`` radians about y."""
    return Rotation.from_euler("y", a).as_matrix()


def rot_z(a: float) -> np.ndarray:
    """Rotation matrix (3, 3) by ``a`` radians about z."""
    return Rotation.from_euler("z", a).as_matrix()


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


# ----------------------------------------------------------------------------- pose
@dataclass
class HandPose:
    """Articulation + global pose of the hand (angles in radians, translation in metres).

    ``flex[f, k]``: flexion of finger ``f`` (thumb, index, middle, ring, pinky)
    at its k-th joint (MCP, PIP, DIP; thumb: CMC, MCP, IP); positive curls
    towards the palm. ``abduct[f]``: sideways rotation at the base joint
    (positive towards the little-finger side; anatomically the same on both
    hands since the left hand is the mirror). ``twist[f]``: rotation about the base bone's own axis (mostly
    for thumb opposition). ``rot``: global rotation (3x3) applied after
    articulation; ``transl``: global translation.
    """

    flex: np.ndarray = field(default_factory=lambda: np.zeros((5, 3)))
    abduct: np.ndarray = field(default_factory=lambda: np.zeros(5))
    twist: np.ndarray = field(default_factory=lambda: np.zeros(5))
    rot: np.ndarray = field(default_factory=lambda: np.eye(3))
    transl: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def copy(self) -> HandPose:
        return HandPose(self.flex.copy(), self.abduct.copy(), self.twist.copy(), self.rot.copy(),
                        self.transl.copy())

    def joint_rotations(self) -> np.ndarray:
        """(5, 3, 3, 3): each finger joint's local rotation in its finger frame."""
        out = np.empty((5, 3, 3, 3))
        # base joint: abduction, then flexion, then twist about the bone (intrinsic z-x-y)
        base = np.stack([self.abduct, self.flex[:, 0], self.twist], axis=1)
        out[:, 0] = Rotation.from_euler("ZXY", base).as_matrix()
        out[:, 1:] = Rotation.from_euler("x", self.flex[:, 1:].reshape(-1, 1)).as_matrix().reshape(5, 2, 3, 3)
        return out

    def full_pose(self) -> np.ndarray:
        """The 48 stored ``full_pose`` values: global rotation as axis-angle (3), then 15
        joint rotations as axis-angle in each finger's own rest frame (x lateral, y along the
        finger, z palmar), in EgoPressure finger order thumb, index, middle, ring, pinky, base
        to tip. (MANO's own order/frames differ; this is documented as synthetic.)"""
        out = np.zeros(48, dtype=np.float32)
        out[:3] = Rotation.from_matrix(self.rot).as_rotvec()
        out[3:] = Rotation.from_matrix(self.joint_rotations().reshape(15, 3, 3)).as_rotvec().reshape(-1)
        return out


# ----------------------------------------------------------------------------- the model
class HandModel:
    """The procedural hand for one side and shape.

    Attributes: ``faces`` (F, 3), ``atlas`` (:class:`UVAtlas`), ``rest_vertices`` (778, 3)
    and ``rest_joints`` (21, 3) in the hand-local frame, ``vertex_part`` (778,) 0 palm /
    1 + finger index, ``vertex_segment`` (778,) 0 palm or base, 1-3 phalanx (thumb:
    metacarpal, proximal, distal), ``vertex_palmar`` (778,) bool, ``vertex_tip`` (778,)
    bool (rounded fingertip incl. the pad), ``skin_weights`` (778, 16).
    """

    def __init__(self, side: str = "right", shape: HandShape | None = None):
        if side not in ("left", "right"):
            raise ValueError(f"hand side must be 'left' or 'right', got {side!r}")
        self.side = side
        self.shape = shape or HandShape()
        geo = _build_geometry(self.shape)
        topo = _topology()
        mirror = side == "left"
        flip = np.array([1.0 if not mirror else -1.0, 1.0, 1.0])
        self.rest_vertices = geo["vertices"] * flip
        self.rest_joints = geo["joints"] * flip
        self._bone_origin = geo["bone_origin"] * flip  # (16, 3): root + 15 bone origins (joint positions)
        self._finger_frames = geo["finger_frames"].copy()  # (5, 3, 3) columns e_x, e_y, e_z
        if mirror:
            # exact mirror: F' = M F (det -1, only used to conjugate joint rotations, so every
            # bone rotation M R M stays proper and the same parameters give the mirrored pose)
            self._finger_frames = np.einsum("ij,fjk->fik", np.diag([-1.0, 1.0, 1.0]), self._finger_frames)
        self.atlas = synthetic_atlas(side)  # topology and UVs do not depend on the shape
        self.faces = self.atlas.faces
        self.skin_weights = geo["weights"]
        self.vertex_part = topo["part"]
        self.vertex_segment = geo["segment"]
        self.vertex_palmar = topo["palmar"]
        self.vertex_tip = geo["tip"]
        self.tip_vertex = topo["tip_vertex"]  # (5,) pole vertex index of each finger
        self._tip_local = self.rest_vertices[self.tip_vertex]
        self._build_operators()

    # -- static helpers -------------------------------------------------------------
    def _build_operators(self) -> None:
        import scipy.sparse as sp

        V, F = NUM_VERTICES, len(self.faces)
        rows = self.faces.reshape(-1)
        cols = np.repeat(np.arange(F), 3)
        self._vf = sp.csr_matrix((np.ones(3 * F), (rows, cols)), shape=(V, F))  # vertex-face incidence
        e = np.concatenate([self.faces[:, [0, 1]], self.faces[:, [1, 2]], self.faces[:, [2, 0]]])
        e = np.concatenate([e, e[:, ::-1]])
        adj = sp.csr_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(V, V))
        adj.data[:] = 1.0
        adj = adj + sp.identity(V, format="csr")
        deg = np.asarray(adj.sum(axis=1)).reshape(-1)
        self.neighbour_mean = sp.diags(1.0 / deg) @ adj  # row-normalised (incl. self)
        self.neighbour_mean = self.neighbour_mean.tocsr()
        self.edges = np.unique(np.sort(e, axis=1), axis=0)

    @property
    def num_vertices(self) -> int:
        return NUM_VERTICES

    # -- posing ------------------------------------------------------------------------
    def bone_transforms(self, params: HandPose) -> np.ndarray:
        """(16, 3, 4) skinning transforms (root, then 5 fingers x 3 bones), local -> posed local."""
        jr = params.joint_rotations()
        T = np.zeros((16, 3, 4))
        T[0, :, :3] = np.eye(3)
        o = self._bone_origin
        for f in range(5):
            F = self._finger_frames[f]
            R_par = np.eye(3)
            p_par_origin = np.zeros(3)  # posed position of the parent's origin
            o_par = np.zeros(3)  # rest origin of the parent
            for k in range(3):
                b = 1 + 3 * f + k
                R_loc = F @ jr[f, k] @ F.T
                # posed joint position = parent transform applied to the rest joint
                p = R_par @ (o[b] - o_par) + p_par_origin
                R = R_par @ R_loc
                T[b, :, :3] = R
                T[b, :, 3] = p - R @ o[b]
                R_par, p_par_origin, o_par = R, p, o[b]
        return T

    def pose(self, params: HandPose | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Posed (vertices (778, 3), joints (21, 3)): articulated, then ``rot``/``transl`` applied."""
        params = params or HandPose()
        T = self.bone_transforms(params)
        blend = (self.skin_weights @ T.reshape(16, 12)).reshape(-1, 3, 4)
        v = np.einsum("vij,vj->vi", blend[:, :, :3], self.rest_vertices) + blend[:, :, 3]
        j = np.empty((NUM_JOINTS, 3))
        j[0] = 0.0
        for f in range(5):
            for k in range(3):
                b = 1 + 3 * f + k
                j[1 + 4 * f + k] = T[b, :, :3] @ self._bone_origin[b] + T[b, :, 3]
            b = 3 + 3 * f
            j[4 + 4 * f] = T[b, :, :3] @ self._tip_local[f] + T[b, :, 3]
        R = np.asarray(params.rot, dtype=np.float64)
        t = np.asarray(params.transl, dtype=np.float64)
        return v @ R.T + t, j @ R.T + t

    # -- geometry helpers -------------------------------------------------------------------
    def face_normals(self, vertices: np.ndarray, normalise: bool = True) -> np.ndarray:
        v = np.asarray(vertices)
        a, b, c = v[self.faces[:, 0]], v[self.faces[:, 1]], v[self.faces[:, 2]]
        n = np.cross(b - a, c - a)
        if normalise:
            n = n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-15)
        return n

    def vertex_normals(self, vertices: np.ndarray) -> np.ndarray:
        """Area-weighted unit vertex normals (outward)."""
        n = self._vf @ self.face_normals(vertices, normalise=False)
        return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-15)

    def vertex_areas(self, vertices: np.ndarray) -> np.ndarray:
        """Per-vertex surface area (m²): a third of the incident faces' areas."""
        fa = 0.5 * np.linalg.norm(self.face_normals(vertices, normalise=False), axis=1)
        return (self._vf @ fa) / 3.0

    def region_label(self) -> np.ndarray:
        """Per-vertex label: 0 palm palmar, 1 palm back, 2 + finger index (thumb .. pinky)."""
        lab = np.where(self.vertex_part == PART_PALM, np.where(self.vertex_palmar, 0, 1), 1 + self.vertex_part)
        return lab.astype(np.int64)


@functools.lru_cache(maxsize=32)
def build_hand(side: str = "right", shape: HandShape | None = None) -> HandModel:
    """Cached :class:`HandModel` for a side (and shape)."""
    return HandModel(side, shape)


@functools.lru_cache(maxsize=4)
def synthetic_atlas(side: str = "right") -> UVAtlas:
    """The UV atlas of the procedural hand (cached). Left = right with flipped winding."""
    if side not in ("left", "right"):
        raise ValueError(f"hand side must be 'left' or 'right', got {side!r}")
    topo = _topology()
    faces, uv_faces = topo["faces"], topo["uv_faces"]
    if side == "left":
        faces, uv_faces = faces[:, ::-1], uv_faces[:, ::-1]
    return UVAtlas(faces=faces.copy(), uvs=topo["uvs"].copy(), uv_faces=uv_faces.copy(),
                   num_vertices=NUM_VERTICES, name=f"synthetic-{side}")


# ============================================================================ construction
def _finger_ring_count(name: str) -> int:
    return _FINGER_RINGS[name]


@functools.lru_cache(maxsize=1)
def _index_plan() -> dict:
    """Vertex index ranges of every part (fixed by the budget)."""
    plan = {}
    n = 0
    plan["palm"] = (n, n + _PALM_AROUND * _PALM_RINGS)
    n += _PALM_AROUND * _PALM_RINGS
    plan["wrist_centre"] = n
    n += 1
    for name in FINGERS:
        cnt = _FINGER_AROUND * _finger_ring_count(name) + 1
        plan[name] = (n, n + cnt)
        n += cnt
    if n != NUM_VERTICES:  # pragma: no cover - a budget bug
        raise AssertionError(f"hand mesh budget is {n} vertices, expected {NUM_VERTICES}")
    return plan


def _palm_vid(ring: int, k: int) -> int:
    return ring * _PALM_AROUND + (k % _PALM_AROUND)


def _finger_vid(name: str, ring: int, k: int) -> int:
    start, _ = _index_plan()[name]
    return start + ring * _FINGER_AROUND + (k % _FINGER_AROUND)


def _finger_pole(name: str) -> int:
    return _index_plan()[name][1] - 1


def _finger_tau() -> np.ndarray:
    """Around-parameter of the finger ring vertices, 0 = back (seam), 0.5 = palmar side."""
    return np.arange(_FINGER_AROUND) / _FINGER_AROUND


def _finger_angle(tau):
    """3D angle from the back of the finger; denser vertices on the palmar side."""
    tau = np.asarray(tau, dtype=np.float64)
    return 2.0 * np.pi * tau + 0.28 * np.sin(2.0 * np.pi * tau)


def _finger_u(tau):
    """UV position across the strip (0..1): the palmar side (tau ~ 0.5) gets more width."""
    tau = np.asarray(tau, dtype=np.float64)
    return tau - _UV_PALMAR_SHARE * np.sin(2.0 * np.pi * tau) / (2.0 * np.pi)


@functools.lru_cache(maxsize=1)
def _topology() -> dict:
    """Faces, UVs, UV faces and per-vertex topological labels (side- and shape-independent)."""
    plan = _index_plan()
    faces: list = []
    uv_faces: list = []
    uvs: list = []
    part = np.zeros(NUM_VERTICES, dtype=np.int64)
    palmar = np.zeros(NUM_VERTICES, dtype=bool)

    def add_uv(u, v) -> int:
        uvs.append((float(u), float(v)))
        return len(uvs) - 1

    rest = _build_geometry(HandShape())  # UVs follow the default hand's proportions
    V = rest["vertices"]

    # ---- palm: palmar chart (vertices 0.._PALM_PALMAR_SEGS of each ring), dorsal chart (the rest)
    kp, kd, Rp = _PALM_PALMAR_SEGS, _PALM_DORSAL_SEGS, _PALM_RINGS
    for ring in range(Rp):
        for k in range(_PALM_AROUND):
            palmar[_palm_vid(ring, k)] = k <= kp
    part[plan["palm"][0]:plan["palm"][1]] = PART_PALM
    part[plan["wrist_centre"]] = PART_PALM

    def chart_grid(ks, box, v_of_ring):
        """UV ids (Rp, len(ks)) of a palm chart, u from the rest arc length across each ring."""
        u0, v0, u1, v1 = box
        ids = np.zeros((Rp, len(ks)), dtype=np.int64)
        for ring in range(Rp):
            pts = V[[_palm_vid(ring, k) for k in ks]]
            arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
            arc /= arc[-1]
            for j, a in enumerate(arc):
                ids[ring, j] = add_uv(u0 + (u1 - u0) * a, v_of_ring(ring, v0, v1))
        return ids

    # v along the palm proportional to the rest ring position (wrist at the bottom)
    ring_y = np.array([V[_palm_vid(r, 0):_palm_vid(r, 0) + _PALM_AROUND, 1].mean() for r in range(Rp)])
    ring_frac = (ring_y - ring_y[0]) / (ring_y[-1] - ring_y[0])

    def v_lin(ring, v0, v1):
        return v0 + (v1 - v0) * ring_frac[ring]

    palmar_ks = list(range(0, kp + 1))  # radial edge (k=0) .. ulnar edge (k=kp)
    # dorsal: from the radial edge (k=0 == _PALM_AROUND) backwards to the ulnar edge, so u runs the
    # same way as on the palmar chart when seen from the back (mirror-free layout)
    dorsal_ks = [(_PALM_AROUND - j) % _PALM_AROUND for j in range(0, kd + 1)]  # 0, 17, ..., 11
    uv_palmar = chart_grid(palmar_ks, _UV_PALMAR, v_lin)
    uv_dorsal = chart_grid(dorsal_ks, _UV_DORSAL, v_lin)

    for ring in range(Rp - 1):
        for j in range(kp):  # palmar quads: outward normal +z side
            a, b = _palm_vid(ring, palmar_ks[j]), _palm_vid(ring, palmar_ks[j + 1])
            c, d = _palm_vid(ring + 1, palmar_ks[j + 1]), _palm_vid(ring + 1, palmar_ks[j])
            ua, ub = uv_palmar[ring, j], uv_palmar[ring, j + 1]
            uc, ud = uv_palmar[ring + 1, j + 1], uv_palmar[ring + 1, j]
            faces += [(a, b, c), (a, c, d)]
            uv_faces += [(ua, ub, uc), (ua, uc, ud)]
        for j in range(kd):
            a, b = _palm_vid(ring, dorsal_ks[j]), _palm_vid(ring, dorsal_ks[j + 1])
            c, d = _palm_vid(ring + 1, dorsal_ks[j + 1]), _palm_vid(ring + 1, dorsal_ks[j])
            ua, ub = uv_dorsal[ring, j], uv_dorsal[ring, j + 1]
            uc, ud = uv_dorsal[ring + 1, j + 1], uv_dorsal[ring + 1, j]
            faces += [(a, b, c), (a, c, d)]
            uv_faces += [(ua, ub, uc), (ua, uc, ud)]

    # ---- knuckle web: zip the last ring's palmar rim to its dorsal rim (monotone in x)
    last = Rp - 1
    top = [_palm_vid(last, k) for k in palmar_ks]  # radial -> ulnar
    bot = [_palm_vid(last, k) for k in dorsal_ks]  # radial -> ulnar
    xs_top = V[top, 0]
    xs_bot = V[bot, 0]
    x_hi, x_lo = max(xs_top.max(), xs_bot.max()), min(xs_top.min(), xs_bot.min())
    u0, v0, u1, v1 = _UV_WEB

    def web_u(x):
        return u0 + (u1 - u0) * (x_hi - x) / (x_hi - x_lo)

    top_uv = [add_uv(web_u(x), v1) for x in xs_top]
    bot_uv = [add_uv(web_u(x), v0) for x in xs_bot]
    i = j = 0
    while i < len(top) - 1 or j < len(bot) - 1:
        # advance along the rim whose next vertex is less far across (merge by x descending)
        adv_top = j >= len(bot) - 1 or (i < len(top) - 1 and xs_top[i + 1] >= xs_bot[j + 1])
        if adv_top:
            faces.append((top[i], bot[j], top[i + 1]))
            uv_faces.append((top_uv[i], bot_uv[j], top_uv[i + 1]))
            i += 1
        else:
            faces.append((top[i], bot[j], bot[j + 1]))
            uv_faces.append((top_uv[i], bot_uv[j], bot_uv[j + 1]))
            j += 1
    # the zip's first/last triangles may be degenerate where the rims share the edge vertices: drop those
    # ---- wrist cap: fan from the centre vertex over ring 0
    wc = plan["wrist_centre"]
    u0, v0, u1, v1 = _UV_WRIST
    ring0 = [_palm_vid(0, k) for k in range(_PALM_AROUND)]
    P0 = V[ring0][:, [0, 2]]
    c = V[wc][[0, 2]]
    ext = np.abs(P0 - c).max(axis=0)
    cu, cv = (u0 + u1) / 2, (v0 + v1) / 2
    hu, hv = (u1 - u0) / 2, (v1 - v0) / 2
    c_uv = add_uv(cu, cv)
    ring_uv = [add_uv(cu + hu * (p[0] - c[0]) / ext[0], cv + hv * (p[1] - c[1]) / ext[1]) for p in P0]
    for k in range(_PALM_AROUND):
        k2 = (k + 1) % _PALM_AROUND
        faces.append((wc, ring0[k2], ring0[k]))
        uv_faces.append((c_uv, ring_uv[k2], ring_uv[k]))

    # ---- fingers
    u_start = _UV_FINGER_U0
    tau = _finger_tau()
    for fi, name in enumerate(FINGERS):
        start, end = plan[name]
        part[start:end] = 1 + fi
        R = _finger_ring_count(name)
        width = _UV_FINGER_WIDTHS[name]
        fv0, fv1 = _UV_FINGER_V
        s = rest["finger_s"][name]  # (R + 1,) arc parameter of rings and pole
        vfrac = (s - s[0]) / (s[-1] - s[0])
        ring_uv = np.zeros((R, _FINGER_AROUND + 1), dtype=np.int64)
        us = np.concatenate([_finger_u(tau), [1.0]])
        for r in range(R):
            for k in range(_FINGER_AROUND + 1):
                ring_uv[r, k] = add_uv(u_start + width * us[k], fv0 + (fv1 - fv0) * vfrac[r])
        ang = _finger_angle(tau)
        for r in range(R):
            for k in range(_FINGER_AROUND):
                palmar[_finger_vid(name, r, k)] = np.cos(ang[k]) < -0.2
        pole = _finger_pole(name)
        for r in range(R - 1):
            for k in range(_FINGER_AROUND):
                a, b = _finger_vid(name, r, k), _finger_vid(name, r, k + 1)
                c_, d = _finger_vid(name, r + 1, k + 1), _finger_vid(name, r + 1, k)
                ua, ub, uc, ud = ring_uv[r, k], ring_uv[r, k + 1], ring_uv[r + 1, k + 1], ring_uv[r + 1, k]
                faces += [(a, c_, b), (a, d, c_)]
                uv_faces += [(ua, uc, ub), (ua, ud, uc)]
        for k in range(_FINGER_AROUND):
            a, b = _finger_vid(name, R - 1, k), _finger_vid(name, R - 1, k + 1)
            pu = add_uv(u_start + width * 0.5 * (us[k] + us[k + 1]), fv1)
            faces.append((a, pole, b))
            uv_faces.append((ring_uv[R - 1, k], pu, ring_uv[R - 1, k + 1]))
        u_start += width + _UV_FINGER_GAP

    faces = np.asarray(faces, dtype=np.int64)
    uv_faces = np.asarray(uv_faces, dtype=np.int64)
    uvs = np.asarray(uvs, dtype=np.float64)
    # drop degenerate faces (repeated vertex), e.g. where the web zip meets the shared rim vertices
    ok = (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])
    faces, uv_faces = faces[ok], uv_faces[ok]
    # make every face's winding outward (checked on the rest mesh against the part's local axis)
    faces, uv_faces = _orient_outward(faces, uv_faces, V, rest, part)
    tip_vertex = np.array([_finger_pole(n) for n in FINGERS], dtype=np.int64)
    return {"faces": faces, "uv_faces": uv_faces, "uvs": uvs, "part": part, "palmar": palmar,
            "tip_vertex": tip_vertex}


def _orient_outward(faces, uv_faces, V, rest, part):
    """Flip faces whose normal points towards their part's inside (the rest mesh decides)."""
    a, b, c = V[faces[:, 0]], V[faces[:, 1]], V[faces[:, 2]]
    n = np.cross(b - a, c - a)
    cen = (a + b + c) / 3.0
    inside = np.empty_like(cen)
    fpart = part[faces].max(axis=1)  # a web/cap face has all palm vertices (part 0)
    for fi in range(6):
        sel = fpart == fi
        if not sel.any():
            continue
        if fi == PART_PALM:
            # palm: the inside is the palm's mid-surface below/above; use the ring centre line
            ax0, ax1 = rest["palm_axis"]
        else:
            ax0, ax1 = rest["finger_axis"][FINGERS[fi - 1]]
        d = ax1 - ax0
        t = np.clip(((cen[sel] - ax0) @ d) / (d @ d), 0.0, 1.0)
        inside[sel] = ax0 + t[:, None] * d
    out = cen - inside
    flip = np.einsum("ij,ij->i", n, out) < 0
    faces = faces.copy()
    uv_faces = uv_faces.copy()
    faces[flip] = faces[flip][:, [0, 2, 1]]
    uv_faces[flip] = uv_faces[flip][:, [0, 2, 1]]
    return faces, uv_faces


@functools.lru_cache(maxsize=64)
def _build_geometry(shape: HandShape) -> dict:
    """Rest vertices, joints, skinning weights and bone frames for a shape (right hand)."""
    plan = _index_plan()
    S = shape.scale
    W = shape.palm_width
    L = shape.finger_length
    Tk = shape.thickness
    V = np.zeros((NUM_VERTICES, 3))
    weights = np.zeros((NUM_VERTICES, 16))
    segment = np.zeros(NUM_VERTICES, dtype=np.int64)
    tip = np.zeros(NUM_VERTICES, dtype=bool)
    joints = np.zeros((NUM_JOINTS, 3))
    bone_origin = np.zeros((16, 3))
    finger_frames = np.zeros((5, 3, 3))
    finger_s = {}
    finger_axis = {}

    # ---- skeleton
    mcp = {}
    for name, (x, y, _fan, _lengths, _r0, _r1) in _FINGER_SPECS.items():
        mcp[name] = np.array([x * W, y, 0.0]) * S
    # knuckle line y(x) for the palm's distal end, through the four MCPs
    kx = np.array([mcp[n][0] for n in ("pinky", "ring", "middle", "index")])
    ky = np.array([mcp[n][1] for n in ("pinky", "ring", "middle", "index")])

    # ---- palm (superelliptic rings, palmar half +z)
    kp, kd, Rp = _PALM_PALMAR_SEGS, _PALM_DORSAL_SEGS, _PALM_RINGS
    t_ring = np.linspace(0.0, 1.0, Rp)
    half_w = np.interp(t_ring, [0.0, 0.35, 0.75, 1.0], [0.029, 0.036, 0.0395, 0.0405]) * S * W
    centre_x = np.interp(t_ring, [0.0, 1.0], [0.0, -0.0015]) * S * W
    # half-thickness of the palmar side (flat-ish: the heel and MCP pads bear a flat press) and the back
    half_t = np.interp(t_ring, [0.0, 0.3, 0.8, 1.0], [0.0140, 0.0135, 0.0125, 0.0110]) * S * Tk
    half_b = np.interp(t_ring, [0.0, 0.3, 0.8, 1.0], [0.0160, 0.0140, 0.0115, 0.0080]) * S * Tk
    # angle parameter: palmar half psi in [0, pi] (k = 0..kp), dorsal half psi in (pi, 2 pi)
    psi = np.concatenate([np.linspace(0.0, np.pi, kp + 1), np.linspace(np.pi, 2 * np.pi, kd + 1)[1:-1]])
    expo = 2.0 / 3.2  # superellipse exponent (boxier than an ellipse)
    cpsi, spsi = np.cos(psi), np.sin(psi)
    ex = np.sign(cpsi) * np.abs(cpsi) ** expo
    ez = np.sign(spsi) * np.abs(spsi) ** expo
    for r in range(Rp):
        xs = centre_x[r] + half_w[r] * ex
        # distal end follows the knuckle arc; fade it in over the palm
        y_end = np.interp(xs, kx, ky, left=ky[0] - 0.006 * S, right=ky[-1] - 0.004 * S) + 0.004 * S
        y_end = np.where(xs < kx[0], y_end - (kx[0] - xs) * 0.5, y_end)
        y_end = np.where(xs > kx[-1], y_end - (xs - kx[-1]) * 0.6, y_end)
        ys = t_ring[r] * y_end
        xn = np.clip((xs - centre_x[r]) / half_w[r], -1.0, 1.0)
        # palmar surface: thenar (+x, proximal) and hypothenar (-x) pads, a shallow central hollow,
        # and the distal (MCP) pad line
        tr = t_ring[r]
        thenar = 0.0035 * np.exp(-((xn - 0.55) / 0.35) ** 2 - ((tr - 0.30) / 0.30) ** 2)
        hypo = 0.0030 * np.exp(-((xn + 0.65) / 0.30) ** 2 - ((tr - 0.40) / 0.35) ** 2)
        hollow = -0.0025 * np.exp(-(xn / 0.35) ** 2 - ((tr - 0.55) / 0.20) ** 2)
        mcp_pad = 0.0020 * np.exp(-((tr - 0.92) / 0.10) ** 2)
        bump = (thenar + hypo + hollow + mcp_pad) * S * Tk
        zs = np.where(ez > 0, half_t[r] * ez + bump * np.clip(ez, 0.0, 1.0) ** 0.5, half_b[r] * ez)
        base = _palm_vid(r, 0)
        V[base:base + _PALM_AROUND] = np.stack([xs, ys, zs], axis=1)
    weights[plan["palm"][0]:plan["palm"][1], 0] = 1.0
    wc = plan["wrist_centre"]
    V[wc] = V[_palm_vid(0, 0):_palm_vid(0, 0) + _PALM_AROUND].mean(axis=0) + np.array([0.0, -0.004 * S, 0.0])
    weights[wc, 0] = 1.0
    palm_axis = (np.array([0.0, 0.0, 0.0]), np.array([0.0, ky.max(), 0.0]))

    # ---- fingers
    tau = _finger_tau()
    ang = _finger_angle(tau)
    for fi, name in enumerate(FINGERS):
        R = _finger_ring_count(name)
        n_tube = R - _CAP_RINGS
        if name == "thumb":
            base = _THUMB_CMC * np.array([W, 1.0, Tk]) * S
            yaw, pitch = np.deg2rad(_THUMB_YAW), np.deg2rad(_THUMB_PITCH)
            e_y = np.array([np.sin(yaw) * np.cos(pitch), np.cos(yaw) * np.cos(pitch), np.sin(pitch)])
            # thumb pad faces the palm's centre line and the palmar side
            n0 = np.array([-0.75, 0.0, 0.66])
            lengths = np.array(_THUMB_LENGTHS) * S * L
            inset = _THUMB_BASE_INSET * S
            radii_at = np.array(_THUMB_RADII) * S * Tk
        else:
            x, y, fan, lengths, r0, r1 = _FINGER_SPECS[name]
            base = mcp[name]
            a = np.deg2rad(fan)
            e_y = np.array([np.sin(a), np.cos(a), 0.0])
            n0 = np.array([0.0, 0.0, 1.0])
            lengths = np.array(lengths) * S * L
            inset = _FINGER_BASE_INSET * S
            radii_at = np.array([r0, 0.5 * (r0 + r1) * 1.02, r1 * 1.04, r1]) * S * Tk
        e_z = n0 - (n0 @ e_y) * e_y
        e_z /= np.linalg.norm(e_z)
        e_x = np.cross(e_y, e_z)
        finger_frames[fi] = np.stack([e_x, e_y, e_z], axis=1)
        # joints along the straight rest finger (s measured from the tube start)
        s_j = inset + np.concatenate([[0.0], np.cumsum(lengths)])  # base joint, 2nd, 3rd, tip
        j_pos = base[None, :] + (s_j - inset)[:, None] * e_y[None, :]
        for k in range(4):
            joints[1 + 4 * fi + k] = j_pos[k]
        for k in range(3):
            bone_origin[1 + 3 * fi + k] = j_pos[k]
        r_cap = radii_at[-1]
        cap_len = 0.85 * r_cap
        s_tip = s_j[-1]
        s_cap0 = s_tip - cap_len
        # tube ring positions: denser towards the tip
        q = np.linspace(0.0, 1.0, n_tube)
        s_tube = s_cap0 * (1.0 - (1.0 - q) ** 1.25)
        s_cap = s_cap0 + cap_len * np.sin(_CAP_ANGLES)
        s_rings = np.concatenate([s_tube, s_cap])
        # UV v along the finger: surface arc length along the rest meridian (the cap by its arc)
        finger_s[name] = np.concatenate([s_tube, s_cap0 + r_cap * _CAP_ANGLES, [s_cap0 + r_cap * np.pi / 2]])
        # radius profile (width), with the thumb's thenar base wider
        s_prof = np.concatenate([[0.0], s_j[1:3], [s_cap0]])
        if name == "thumb":
            s_prof = np.array([0.0, s_j[1], s_j[2], s_cap0])
        r_tube = np.interp(s_tube, s_prof, radii_at)
        r_caps = r_cap * np.cos(_CAP_ANGLES)
        radius = np.concatenate([r_tube, r_caps])
        thick = _FINGER_THICKNESS if name != "thumb" else 0.82
        # pulp: the palmar side of the distal pad bulges a little
        start = plan[name][0]
        for r in range(R):
            c = base + (s_rings[r] - inset) * e_y
            rw = radius[r]
            rt = radius[r] * thick
            pulp = 1.0 + 0.10 * np.exp(-((s_rings[r] - (s_cap0 - 0.3 * lengths[2])) / (0.5 * lengths[2])) ** 2)
            off_x = np.sin(ang) * rw
            off_z = -np.cos(ang) * rt
            off_z = np.where(off_z > 0, off_z * pulp, off_z)
            pts = c[None, :] + off_x[:, None] * e_x[None, :] + off_z[:, None] * e_z[None, :]
            V[start + r * _FINGER_AROUND: start + (r + 1) * _FINGER_AROUND] = pts
        pole = _finger_pole(name)
        V[pole] = base + (s_tip - inset) * e_y
        joints[4 + 4 * fi] = V[pole]
        finger_axis[name] = (base - inset * e_y, base + (s_cap0 - inset) * e_y)
        # skinning weights along s: root -> bone1 -> bone2 -> bone3, smooth across each joint
        s_all = np.concatenate([np.repeat(s_rings, _FINGER_AROUND), [s_tip]])
        blend_w = np.array([0.55, 0.50, 0.45]) * radii_at[:3]
        sig = [_smoothstep((s_all - (s_j[k] - blend_w[k])) / (2 * blend_w[k])) for k in range(3)]
        if name == "thumb":  # the thumb's first bone also moves the base of the tube (thenar)
            sig[0] = _smoothstep((s_all - 0.0) / max(s_j[0] + blend_w[0], 1e-6))
        w = np.stack([1.0 - sig[0], sig[0] - sig[1], sig[1] - sig[2], sig[2]], axis=1)
        idx = np.arange(start, plan[name][1])
        weights[idx, 0] = w[:, 0]
        weights[idx, 1 + 3 * fi: 4 + 3 * fi] = w[:, 1:]
        seg = np.digitize(s_all, s_j[:3])  # 0 before the base joint, 1..3 phalanges
        segment[idx] = seg
        tip[idx] = s_all >= s_j[2] + 0.35 * lengths[2]
    joints[0] = 0.0
    return {"vertices": V, "joints": joints, "weights": weights, "segment": segment, "tip": tip,
            "bone_origin": bone_origin, "finger_frames": finger_frames, "finger_s": finger_s,
            "finger_axis": finger_axis, "palm_axis": palm_axis}
