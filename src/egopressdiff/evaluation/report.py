"""A self-contained HTML report: method comparison, per-gesture tables and the pictures.

The page has inline CSS only and relative links, so the output folder can be
moved, zipped or opened from disk without a server or network.
"""

from __future__ import annotations

import datetime as _dt
import html
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import quote

from egopressdiff.evaluation.metrics import METRIC_LABELS
from egopressdiff.fsutil import atomic_write_text

# Columns of the comparison table; True where higher is better.
COMPARISON_COLUMNS = (
    ("contact_iou", True),
    ("volumetric_iou", True),
    ("mae_kpa", False),
    ("temporal_accuracy", True),
    ("force_error_n", False),
    ("false_contact_rate", False),
    ("num_frames", None),
)
GESTURE_COLUMNS = ("volumetric_iou", "contact_iou", "mae_kpa", "temporal_accuracy")

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:1180px;color:#222;padding:0 12px}
h1{font-size:1.6em}h2{margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0 16px}th,td{padding:4px 10px;border-bottom:1px solid #e4e4e4}
th{background:#f4f4f4;text-align:center}td.num{text-align:right;font-variant-numeric:tabular-nums}
td.best{font-weight:bold}.notes{background:#f8f8f8;padding:8px 14px;border-left:3px solid #bbb;white-space:pre-wrap}
.items{display:flex;flex-wrap:wrap;gap:18px}.item{border:1px solid #ddd;padding:8px;max-width:100%}
.item img,.item video{max-width:100%;display:block;margin:4px 0}.caption{font-size:.9em;color:#555}
"""


def _rel(path, out_dir: Path) -> str:
    """``path`` as a link from ``out_dir/index.html``: relative to the page, '/'-separated, URL-quoted.

    A relative ``path`` means what it means everywhere else in Python: relative to the
    current directory. Both sides are made absolute before the link is computed, so it is
    right whether ``out_dir`` is relative or absolute and whatever the working directory.
    """
    target, page_dir = Path(path).resolve(), Path(out_dir).resolve()
    try:
        rel = os.path.relpath(target, page_dir)
    except ValueError:  # another drive (Windows): no relative link exists
        return target.as_uri()
    return quote(Path(rel).as_posix())


def _fmt(v, key: str) -> str:
    if v is None:
        return "&ndash;"
    if key == "num_frames":
        return str(int(v))
    return f"{v:.3f}" if key in ("mae_kpa", "force_error_n") else f"{v:.4f}"


def _best(values: list, higher) -> set[int]:
    vals = [(i, v) for i, v in enumerate(values) if v is not None]
    if higher is None or len(vals) < 2:
        return set()
    target = max(v for _, v in vals) if higher else min(v for _, v in vals)
    return {i for i, v in vals if v == target}


def _comparison_table(tables: Mapping[str, dict]) -> str:
    names = list(tables)
    head = "".join(f"<th>{html.escape(METRIC_LABELS[k])}</th>" for k, _ in COMPARISON_COLUMNS)
    cols = {k: [tables[n].get(k) for n in names] for k, _ in COMPARISON_COLUMNS}
    best = {k: _best(cols[k], hb) for k, hb in COMPARISON_COLUMNS}
    rows = []
    for i, n in enumerate(names):
        cells = "".join(
            f'<td class="num{" best" if i in best[k] else ""}">{_fmt(cols[k][i], k)}</td>'
            for k, _ in COMPARISON_COLUMNS)
        rows.append(f"<tr><td>{html.escape(n)}</td>{cells}</tr>")
    return f'<table class="comparison"><tr><th>Method</th>{head}</tr>{"".join(rows)}</table>'


def _gesture_tables(tables: Mapping[str, dict]) -> str:
    names = list(tables)
    families = sorted({f for t in tables.values() for f in t.get("per_gesture", {})})
    if not families:
        return ""
    out = []
    for key in GESTURE_COLUMNS:
        higher = dict(COMPARISON_COLUMNS)[key]
        head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
        rows = []
        for fam in families:
            vals = [tables[n].get("per_gesture", {}).get(fam, {}).get(key) for n in names]
            best = _best(vals, higher)
            cells = "".join(f'<td class="num{" best" if i in best else ""}">{_fmt(v, key)}</td>'
                            for i, v in enumerate(vals))
            rows.append(f"<tr><td>{html.escape(fam)}</td>{cells}</tr>")
        out.append(f"<h3>{html.escape(METRIC_LABELS[key])}</h3>"
                   f'<table class="per-gesture"><tr><th>Gesture family</th>{head}</tr>{"".join(rows)}</table>')
    return "\n".join(out)


def _media(path, out_dir: Path, alt: str, poster=None) -> str:
    src = _rel(path, out_dir)
    if str(path).lower().endswith((".mp4", ".webm")):
        shown = f' poster="{_rel(poster, out_dir)}"' if poster else ""
        return f'<video src="{src}"{shown} controls loop muted playsinline preload="metadata"></video>'
    return f'<a href="{src}"><img src="{src}" alt="{html.escape(alt)}" loading="lazy"></a>'


_MEDIA_KEYS = ("video", "hand_image", "image", "thumbnail")


def _items(items: Sequence[Mapping], out_dir: Path) -> str:
    blocks = []
    for it in items:
        title = " / ".join(html.escape(str(it[k])) for k in ("method", "sequence") if it.get(k))
        media = "".join(_media(it[k], out_dir, f"{k} {it.get('sequence', '')}",
                               poster=it.get("poster") if k == "video" else None)
                        for k in _MEDIA_KEYS if it.get(k))
        extra = [f"{html.escape(k)}: {html.escape(str(v))}" for k, v in it.items()
                 if k not in (*_MEDIA_KEYS, "poster", "method", "sequence") and v is not None]
        links = "".join(f' <a href="{_rel(it[k], out_dir)}">{k}</a>' for k in _MEDIA_KEYS if it.get(k))
        blocks.append(f'<div class="item"><b>{title}</b>{media}'
                      f'<div class="caption">{"<br>".join(extra)}{("<br>files:" + links) if links else ""}</div></div>')
    return f'<div class="items">{"".join(blocks)}</div>'


def write_report(out_dir, title: str, metrics_tables: Mapping[str, dict], items: Sequence[Mapping] = (),
                 notes: str = "") -> Path:
    """Write ``<out_dir>/index.html`` atomically and return its path.

    ``metrics_tables``: method name -> result dict of
    :func:`~egopressdiff.evaluation.metrics.evaluate_predictions` (one comparison row
    each; per-gesture tables from their ``per_gesture``). ``items``: dicts with
    ``sequence`` and optionally ``method``, ``video`` (with ``poster``, the picture shown before it plays), ``hand_image``, ``image``,
    ``thumbnail`` (paths, absolute or relative to the current directory; each is
    linked relative to ``index.html``) and any other
    key/value shown as a caption. ``notes``: free text shown verbatim.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="caption">Written {_dt.datetime.now().strftime("%Y-%m-%d %H:%M")}. '
        "Metrics on 224x224 UV-pressure maps (kPa), prediction masked by the UV mask; contact = "
        "pressure &gt; 1 kPa; IoUs pooled over all pixels and frames; temporal accuracy = fraction of frames "
        "whose any-contact flag agrees; force error = mean |total force error| per frame; false contact = "
        "fraction of frames of no-contact (hover) sequences predicted in contact. Best value per column in bold.</p>",
    ]
    if notes:
        parts.append(f'<div class="notes">{html.escape(notes)}</div>')
    if metrics_tables:
        parts += ["<h2>Comparison</h2>", _comparison_table(metrics_tables)]
        g = _gesture_tables(metrics_tables)
        if g:
            parts += ["<h2>Per gesture family</h2>", g]
    if items:
        parts += ["<h2>Sequences</h2>", _items(items, out_dir)]
    parts.append("</body></html>")
    path = out_dir / "index.html"
    atomic_write_text(path, "\n".join(parts) + "\n")
    return path
