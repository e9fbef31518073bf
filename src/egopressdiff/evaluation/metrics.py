"""The field's pressure metrics, as PressureVision and EgoPressure define them.

Everything is in kPa on 224x224 UV maps, and the prediction is multiplied by
the UV mask before anything is measured.

* contact = pressure > 1.0 kPa
* **Contact IoU** = Σ|contact_pred ∧ contact_gt| / Σ|contact_pred ∨ contact_gt|
* **Volumetric IoU** = Σ min(pred, gt) / Σ max(pred, gt)
* **MAE** = mean |pred − gt| over all pixels (the whole 224x224 map) of all frames
* **Temporal accuracy** = fraction of frames where "any pixel in contact" agrees

The sums run over **all pixels of all frames** pooled together (not a mean of
per-frame values), so :class:`MetricAccumulator` only keeps sums: sequences
can be streamed chunk by chunk and accumulators merged exactly.

Two extras the field's metrics do not show:

* **force error** (N): per frame |F_pred − F_gt| with F = Σ kPa·1000·area over
  texels (area from :meth:`egopressdiff.data.atlas.UVAtlas.texel_area`);
  reported as the mean over frames that came with an area map.
* **false-contact rate**: on no-contact (hover) sequences, the fraction of
  frames where the prediction has any pixel in contact.

Empty cases (documented conventions, so the JSON never holds NaN):

* Contact IoU when neither prediction nor ground truth has any contact pixel
  in the pooled frames (union = 0): **1.0** — both agree there is no contact.
* Volumetric IoU when both maps are zero everywhere (Σmax = 0): **1.0**, same reason.
* A metric with nothing to measure (no frames; no area maps for the force
  error; no hover frames for the false-contact rate) is ``None`` (JSON null).

When the predictions carry their spread (``std`` in the items: ``pressure_std_kpa``
of ``predict --samples N``), :func:`evaluate_predictions` also reports how well it
predicts the error (:mod:`egopressdiff.evaluation.uncertainty`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields

import numpy as np

from egopressdiff.data.layout import gesture_family

CONTACT_THRESHOLD_KPA = 1.0
HOVER_FAMILY = "hover"

# Keys of a result dict in the order tables show them.
METRIC_KEYS = (
    "contact_iou",
    "volumetric_iou",
    "mae_kpa",
    "temporal_accuracy",
    "force_error_n",
    "false_contact_rate",
    "num_frames",
)
METRIC_LABELS = {
    "contact_iou": "Contact IoU",
    "volumetric_iou": "Vol. IoU",
    "mae_kpa": "MAE (kPa)",
    "temporal_accuracy": "Temporal acc.",
    "force_error_n": "Force err. (N)",
    "false_contact_rate": "False contact",
    "num_frames": "Frames",
}


def _as_frames(x, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ValueError(f"{name} must be (H, W) or (T, H, W), got shape {a.shape}")
    return a


@dataclass
class MetricAccumulator:
    """Running sums of every metric; ``update`` per chunk of frames, ``result`` at the end.

    All fields are plain sums/counts, so two accumulators combine exactly with
    :meth:`merge` (or ``+``) and the pooled result equals one pass over all frames.
    """

    contact_threshold: float = CONTACT_THRESHOLD_KPA
    contact_intersection: int = 0
    contact_union: int = 0
    volume_min: float = 0.0
    volume_max: float = 0.0
    abs_error_sum: float = 0.0
    num_pixels: int = 0
    num_frames: int = 0
    temporal_agree: int = 0
    force_abs_error_sum: float = 0.0
    force_frames: int = 0
    hover_frames: int = 0
    hover_false_contact_frames: int = 0

    def update(self, pred, gt, mask, area=None, hover: bool = False) -> MetricAccumulator:
        """Add frames: ``pred``/``gt`` (T, H, W) or (H, W) kPa; ``mask`` (H, W) or (T, H, W).

        ``area``: optional per-texel area in m², (T, H, W) or (H, W), for the force error.
        ``hover``: the frames belong to a no-contact sequence (counts toward the false-contact rate).
        """
        p = _as_frames(pred, "pred")
        g = _as_frames(gt, "gt")
        if p.shape != g.shape:
            raise ValueError(f"prediction shape {p.shape} differs from ground truth {g.shape}")
        m = np.asarray(mask, dtype=np.float64)
        if m.shape not in (p.shape[1:], p.shape):
            raise ValueError(f"mask shape {m.shape} does not match maps {p.shape}")
        p = p * m  # the prediction is masked by the UV mask first, as the field scores it
        t = p.shape[0]
        thr = self.contact_threshold
        cp = p > thr
        cg = g > thr
        self.contact_intersection += int(np.count_nonzero(cp & cg))
        self.contact_union += int(np.count_nonzero(cp | cg))
        self.volume_min += float(np.minimum(p, g).sum())
        self.volume_max += float(np.maximum(p, g).sum())
        self.abs_error_sum += float(np.abs(p - g).sum())
        self.num_pixels += int(p.size)
        self.num_frames += t
        any_p = cp.reshape(t, -1).any(axis=1)
        any_g = cg.reshape(t, -1).any(axis=1)
        self.temporal_agree += int(np.count_nonzero(any_p == any_g))
        if area is not None:
            a = np.asarray(area, dtype=np.float64)
            if a.shape not in (p.shape[1:], p.shape):
                raise ValueError(f"area shape {a.shape} does not match maps {p.shape}")
            f_pred = (p * 1000.0 * a).reshape(t, -1).sum(axis=1)  # kPa -> Pa, times m² -> N
            f_gt = (g * 1000.0 * a).reshape(t, -1).sum(axis=1)
            self.force_abs_error_sum += float(np.abs(f_pred - f_gt).sum())
            self.force_frames += t
        if hover:
            self.hover_frames += t
            self.hover_false_contact_frames += int(np.count_nonzero(any_p))
        return self

    def merge(self, other: MetricAccumulator) -> MetricAccumulator:
        """Add ``other``'s sums into this accumulator (thresholds must match)."""
        if other.contact_threshold != self.contact_threshold:
            raise ValueError("cannot merge accumulators with different contact thresholds")
        for f in fields(self):
            if f.name != "contact_threshold":
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self

    def __add__(self, other: MetricAccumulator) -> MetricAccumulator:
        out = MetricAccumulator(self.contact_threshold)
        return out.merge(self).merge(other)

    def result(self) -> dict:
        """The metrics as a JSON-ready dict (``None`` where undefined; never NaN)."""
        if self.num_frames == 0:
            res = {k: None for k in METRIC_KEYS}
            res["num_frames"] = 0
            return res
        contact_iou = 1.0 if self.contact_union == 0 else self.contact_intersection / self.contact_union
        vol_iou = 1.0 if self.volume_max <= 0.0 else self.volume_min / self.volume_max
        return {
            "contact_iou": float(contact_iou),
            "volumetric_iou": float(vol_iou),
            "mae_kpa": self.abs_error_sum / self.num_pixels,
            "temporal_accuracy": self.temporal_agree / self.num_frames,
            "force_error_n": (self.force_abs_error_sum / self.force_frames) if self.force_frames else None,
            "false_contact_rate": (self.hover_false_contact_frames / self.hover_frames)
            if self.hover_frames
            else None,
            "num_frames": int(self.num_frames),
        }


def compute_metrics(pred, gt, mask, area=None, hover: bool = False,
                    contact_threshold: float = CONTACT_THRESHOLD_KPA) -> dict:
    """One-shot metrics of ``pred`` vs ``gt`` (see :class:`MetricAccumulator`)."""
    return MetricAccumulator(contact_threshold).update(pred, gt, mask, area, hover).result()


def _chunks_of(item: Mapping):
    if "chunks" in item:
        for ch in item["chunks"]:
            yield ch["pred"], ch["gt"], ch.get("area"), ch.get("std")
    else:
        yield item["pred"], item["gt"], item.get("area"), item.get("std")


def evaluate_predictions(items: Iterable[Mapping], contact_threshold: float = CONTACT_THRESHOLD_KPA,
                         progress: bool = False) -> dict:
    """Overall, per-sequence and per-gesture-family metrics over many sequences.

    Each item is a mapping with ``participant``, ``sequence``, ``mask`` (H, W) and
    either ``pred``/``gt`` (T, H, W) kPa arrays plus optional ``area`` (T, H, W) m²,
    or ``chunks``: an iterable of ``{"pred", "gt", "area"}`` dicts (to stream a
    long sequence). Items are consumed one at a time, so memory stays at one
    sequence (or one chunk).

    The gesture family comes from the sequence name
    (:func:`egopressdiff.data.layout.gesture_family`); sequences of the ``hover``
    family feed the false-contact rate.

    Items (or chunks) may also hold ``std`` (T, H, W) kPa, the predictions' spread; then
    the overall result adds the uncertainty metrics of
    :class:`~egopressdiff.evaluation.uncertainty.UncertaintyAccumulator`. Either every
    chunk has one or none does (a folder mixing both is an error naming the sequence).
    """
    from egopressdiff.errors import DataError
    from egopressdiff.evaluation.uncertainty import UncertaintyAccumulator

    overall = MetricAccumulator(contact_threshold)
    spread = UncertaintyAccumulator(contact_threshold)
    has_std = None  # unknown until the first chunk
    per_gesture: dict[str, MetricAccumulator] = {}
    per_sequence: dict[str, dict] = {}
    it = items
    if progress:
        from tqdm import tqdm

        it = tqdm(items, desc="evaluate", unit="seq")
    for item in it:
        participant, sequence = str(item.get("participant", "")), str(item["sequence"])
        family = gesture_family(sequence)
        hover = family == HOVER_FAMILY
        acc = MetricAccumulator(contact_threshold)
        for pred, gt, area, std in _chunks_of(item):
            acc.update(pred, gt, item["mask"], area=area, hover=hover)
            if has_std is None:
                has_std = std is not None
            elif has_std != (std is not None):
                raise DataError("some predictions carry pressure_std_kpa and some do not; predict them all with "
                                "the same --samples", sequence=f"{participant}/{sequence}")
            if std is not None:
                spread.update(pred, std, gt, item["mask"])
        key = f"{participant}/{sequence}" if participant else sequence
        per_sequence[key] = {"participant": participant, "sequence": sequence, "gesture_family": family,
                             **acc.result()}
        overall.merge(acc)
        per_gesture.setdefault(family, MetricAccumulator(contact_threshold)).merge(acc)
    res = overall.result()
    if has_std:
        res.update(spread.result())
    res["contact_threshold_kpa"] = contact_threshold
    res["per_sequence"] = per_sequence
    res["per_gesture"] = {fam: per_gesture[fam].result() for fam in sorted(per_gesture)}
    return res


def _fmt(v, key: str) -> str:
    if v is None:
        return "-"
    if key == "num_frames":
        return str(int(v))
    if isinstance(v, float) and not math.isfinite(v):
        return "nan"
    if key in ("mae_kpa", "force_error_n"):
        return f"{v:.3f}"
    return f"{v:.4f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) if rows else len(header[i])
              for i in range(len(header))]
    line = lambda cells: "  ".join(  # noqa: E731
        c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), sep, *(line(r) for r in rows)])


def format_metrics_table(results: dict, per_sequence: bool = False, per_gesture: bool = True) -> str:
    """Plain-text table of a result dict from :func:`evaluate_predictions` (overall, per gesture, per sequence)."""
    header = ["", *(METRIC_LABELS[k] for k in METRIC_KEYS)]
    rows = [["overall", *(_fmt(results.get(k), k) for k in METRIC_KEYS)]]
    if per_gesture:
        for fam, r in results.get("per_gesture", {}).items():
            rows.append([f"  {fam}", *(_fmt(r.get(k), k) for k in METRIC_KEYS)])
    text = _table(header, rows)
    from egopressdiff.evaluation.uncertainty import format_uncertainty

    spread = format_uncertainty(results)
    if spread:
        text += "\n" + spread
    if per_sequence and results.get("per_sequence"):
        srows = [[name, *(_fmt(r.get(k), k) for k in METRIC_KEYS)]
                 for name, r in results["per_sequence"].items()]
        text += "\n\n" + _table(["sequence", *header[1:]], srows)
    return text


def format_comparison_table(tables: Mapping[str, dict]) -> str:
    """Plain-text table comparing several methods' overall results (one row per method)."""
    header = ["method", *(METRIC_LABELS[k] for k in METRIC_KEYS)]
    rows = [[name, *(_fmt(r.get(k), k) for k in METRIC_KEYS)] for name, r in tables.items()]
    return _table(header, rows)


def metrics_to_json(results: dict) -> str:
    """Serialise results; refuses NaN/inf so the file is strict JSON."""
    return json.dumps(results, indent=2, allow_nan=False)
