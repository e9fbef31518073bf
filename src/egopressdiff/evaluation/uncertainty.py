"""How well a model's own spread predicts its error (``pressure_std_kpa`` of ``predict --samples N``).

Measured over the UV-mask texels (the hand), separately on two kinds of frames:

* **contact** frames: the ground truth has some texel in contact (> 1 kPa);
* **hover** frames: it has none (no-contact hovers, and the approach / release frames
  of pressing sequences).

On each, per texel the absolute error e = |pred − gt| (the prediction masked by the
UV mask, as the field's metrics see it) and the std s:

* ``std_coverage_2sd_*``: the share of texels with e ≤ 2·s — for a calibrated
  Gaussian spread about 0.95;
* ``std_error_corr_*``: the Pearson correlation of s and e over those texels — does
  the model know *where* it is wrong. ``None`` when undefined (no texels, or s or e
  constant: a correlation needs both to vary).

:class:`UncertaintyAccumulator` keeps per-group counts, means and co-moments only
(combined with Chan et al.'s pairwise update), so sequences stream chunk by chunk and
the pooled result equals one pass over all texels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from egopressdiff.evaluation.metrics import CONTACT_THRESHOLD_KPA

GROUPS = ("contact", "hover")
UNCERTAINTY_KEYS = tuple(f"{m}_{g}" for m in ("std_coverage_2sd", "std_error_corr") for g in GROUPS)
UNCERTAINTY_LABELS = {
    "std_coverage_2sd_contact": "within 2 std (contact)",
    "std_coverage_2sd_hover": "within 2 std (hover)",
    "std_error_corr_contact": "corr(std, |err|) (contact)",
    "std_error_corr_hover": "corr(std, |err|) (hover)",
}
# relative size below which a spread counts as none: float rounding of a constant is not variation
_REL_EPS = 1e-9


@dataclass
class _Moments:
    """Count, coverage count, means and (co-)moments of (std, error) pairs."""

    n: int = 0
    covered: int = 0
    frames: int = 0
    mean_s: float = 0.0
    mean_e: float = 0.0
    m2_s: float = 0.0
    m2_e: float = 0.0
    c_se: float = 0.0

    def add(self, s: np.ndarray, e: np.ndarray, frames: int) -> None:
        self.frames += frames
        if s.size == 0:
            return
        other = _Moments(n=int(s.size), covered=int(np.count_nonzero(e <= 2.0 * s)),
                         mean_s=float(s.mean()), mean_e=float(e.mean()))
        ds, de = s - other.mean_s, e - other.mean_e
        other.m2_s, other.m2_e, other.c_se = float(ds @ ds), float(de @ de), float(ds @ de)
        self.merge(other)

    def merge(self, o: _Moments) -> None:
        if o.n == 0:
            self.frames += o.frames
            return
        n = self.n + o.n
        ds, de = o.mean_s - self.mean_s, o.mean_e - self.mean_e
        w = self.n * o.n / n
        self.m2_s += o.m2_s + ds * ds * w
        self.m2_e += o.m2_e + de * de * w
        self.c_se += o.c_se + ds * de * w
        self.mean_s += ds * o.n / n
        self.mean_e += de * o.n / n
        self.n, self.covered, self.frames = n, self.covered + o.covered, self.frames + o.frames

    def coverage(self) -> float | None:
        return self.covered / self.n if self.n else None

    def correlation(self) -> float | None:
        if self.n < 2:
            return None
        sd_s, sd_e = np.sqrt(self.m2_s / self.n), np.sqrt(self.m2_e / self.n)
        if sd_s <= _REL_EPS * abs(self.mean_s) or sd_e <= _REL_EPS * abs(self.mean_e) or sd_s == 0 or sd_e == 0:
            return None
        return float(np.clip(self.c_se / (self.n * sd_s * sd_e), -1.0, 1.0))


@dataclass
class UncertaintyAccumulator:
    """Running sums of the uncertainty metrics; ``update`` per chunk of frames, ``result`` at the end."""

    contact_threshold: float = CONTACT_THRESHOLD_KPA
    groups: dict = field(default_factory=lambda: {g: _Moments() for g in GROUPS})

    def update(self, pred, std, gt, mask) -> UncertaintyAccumulator:
        """Add frames: ``pred``, ``std``, ``gt`` (T, H, W) or (H, W) kPa; ``mask`` (H, W) or (T, H, W)."""
        p, s, g = (np.asarray(a, dtype=np.float64) for a in (pred, std, gt))
        p, s, g = (a[None] if a.ndim == 2 else a for a in (p, s, g))
        if not (p.shape == s.shape == g.shape) or p.ndim != 3:
            raise ValueError(f"prediction {p.shape}, std {s.shape} and ground truth {g.shape} must be equal (T, H, W)")
        m = np.asarray(mask, dtype=np.float64)
        if m.shape not in (p.shape[1:], p.shape):
            raise ValueError(f"mask shape {m.shape} does not match maps {p.shape}")
        m = np.broadcast_to(m, p.shape)
        err = np.abs(p * m - g)  # the prediction masked first, as the field's metrics see it
        contact = (g > self.contact_threshold).reshape(len(g), -1).any(axis=1)
        for name, rows in (("contact", contact), ("hover", ~contact)):
            inside = m[rows] > 0  # the UV-mask texels of these frames
            self.groups[name].add(s[rows][inside], err[rows][inside], int(np.count_nonzero(rows)))
        return self

    def merge(self, other: UncertaintyAccumulator) -> UncertaintyAccumulator:
        for g in GROUPS:
            self.groups[g].merge(other.groups[g])
        return self

    def result(self) -> dict:
        """The metrics as a JSON-ready dict (``None`` where undefined; never NaN), plus frame counts."""
        out = {}
        for g in GROUPS:
            out[f"std_coverage_2sd_{g}"] = self.groups[g].coverage()
        for g in GROUPS:
            out[f"std_error_corr_{g}"] = self.groups[g].correlation()
        for g in GROUPS:
            out[f"std_frames_{g}"] = self.groups[g].frames
        return out


def format_uncertainty(results: dict) -> str:
    """One line for the printed table, or "" when the results hold no uncertainty metrics."""
    if not any(k in results for k in UNCERTAINTY_KEYS):
        return ""
    cells = [f"{UNCERTAINTY_LABELS[k]} {'-' if results.get(k) is None else format(results[k], '.3f')}"
             for k in UNCERTAINTY_KEYS]
    return "uncertainty (pressure_std_kpa): " + ", ".join(cells)
