"""Pictures of a prediction folder (the body of ``egopressdiff render``).

Per sequence: a video of RGB crop | predicted UV map | ground truth | |error|
with a kPa colour bar, and the pressure drawn on the 3D hand (palm view) at the
frame of peak ground-truth force, predicted beside ground truth. An
``index.html`` links everything and shows the metric table.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from egopressdiff.fsutil import check_safe_name, ensure_output_dir

CROP_SIZE = 160  # display crop; independent of the model's input size


def render_sequence(reader, pred, participant: str, sequence: str, out_dir: Path, fps: float = 10,
                    max_frames: int | None = None, method: str | None = None, crop_cache: dict | None = None) -> dict:
    """One sequence's video and 3D-hand picture into ``out_dir/participant``; returns the report item.

    ``crop_cache``: a dict shared by the renders of several methods on the same data (the demo):
    the display crops of a sequence are cut once and reused (the render's slowest input).
    """
    from egopressdiff.data.clips import build_inputs
    from egopressdiff.evaluation.predictions import check_prediction_complete
    from egopressdiff.evaluation.render import (
        compose_frame,
        default_vmax,
        render_pressure_on_hand,
        save_png,
        write_video,
    )

    check_safe_name(participant, "participant name")
    check_safe_name(sequence, "sequence name")
    reader.require_pressure(participant, sequence, "draw beside the prediction")
    frames = reader.predictable_frames(participant, sequence)  # the frames predict and evaluate use
    if max_frames:
        frames = frames[:max_frames]
    rows = check_prediction_complete(pred, frames)
    atlas = reader.atlas(participant, sequence)
    mask = atlas.mask(224)
    gt = np.stack([reader.load_pressure(participant, sequence, int(f)) for f in frames])
    pr = np.asarray(pred.pressure_kpa[rows]) * mask
    vmax = default_vmax(gt, pr)
    seq_dir = out_dir / participant
    seq_dir.mkdir(parents=True, exist_ok=True)

    # the frame of the largest ground-truth (or predicted) total pressure: the 3D hand and the video's
    # poster show it, so the report shows contact before anyone presses play (frame 0 is often empty)
    peak = int(np.argmax(gt.sum(axis=(1, 2)) + 1e-6 * pr.sum(axis=(1, 2))))
    poster_path = seq_dir / f"{sequence}_poster.png"

    def panels():
        for start in range(0, len(frames), 16):  # stream crops in chunks: flat memory
            fr = frames[start:start + 16]
            key = (str(reader.root), participant, sequence, tuple(int(f) for f in fr))
            rgb = None if crop_cache is None else crop_cache.get(key)
            if rgb is None:
                rgb = build_inputs(reader, participant, sequence, fr, crop_size=CROP_SIZE)["rgb"].numpy()
                if crop_cache is not None:
                    crop_cache[key] = rgb
            for k, f in enumerate(fr):
                i = start + k
                panel = compose_frame(rgb[k], pr[i], gt[i], vmax=vmax, mask=mask,
                                      caption=f"{sequence}  frame {int(f)}")
                if i == peak:
                    save_png(panel, poster_path)
                yield panel

    video = write_video(panels(), seq_dir / f"{sequence}.mp4", fps=fps)
    ann = reader.load_annotation(participant, sequence, int(frames[peak]))
    hand_pred = render_pressure_on_hand(ann.vertices, atlas.faces, atlas, pr[peak], vmax=vmax)
    hand_gt = render_pressure_on_hand(ann.vertices, atlas.faces, atlas, gt[peak], vmax=vmax)
    hand = np.concatenate([hand_pred, np.full((hand_pred.shape[0], 8, 3), 255, np.uint8), hand_gt], axis=1)
    hand_path = save_png(hand, seq_dir / f"{sequence}_hand.png")
    # absolute: the report links them relative to its own folder, whatever the working directory
    return {"sequence": f"{participant}/{sequence}", "method": method, "video": str(video.resolve()),
            "poster": str(poster_path.resolve()), "hand_image": str(hand_path.resolve()),
            "note": f"3D hand at frame {int(frames[peak])}: predicted (left) | ground truth (right); scale 0-{vmax:.0f} kPa"}


def render_folder(pred_root, data_root, output, max_sequences: int | None = None, max_frames: int | None = None,
                  metrics: dict | None = None, title: str = "EgoPressDiff predictions", progress: bool = True,
                  method: str = "prediction") -> Path:
    from tqdm.auto import tqdm

    from egopressdiff.data.reader import EgoPressureReader
    from egopressdiff.evaluation.predictions import prediction_path, read_prediction
    from egopressdiff.evaluation.report import write_report
    from egopressdiff.evaluation.run import sequences_to_evaluate

    out = ensure_output_dir(output, "render output")
    reader = EgoPressureReader(data_root)
    pairs = sequences_to_evaluate(pred_root, reader)
    if max_sequences:
        pairs = pairs[:max_sequences]
    for p, s in pairs:  # before drawing anything
        reader.require_pressure(p, s, "draw beside the prediction")
    items = []
    for p, s in tqdm(pairs, desc="render", unit="seq", disable=not progress):
        pred = read_prediction(prediction_path(pred_root, p, s))
        items.append(render_sequence(reader, pred, p, s, out, max_frames=max_frames, method=method))
    tables = {method: metrics} if metrics else {}
    return write_report(out, title, tables, items)
