"""Evaluate a prediction folder against a dataset (the body of ``egopressdiff evaluate``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from egopressdiff.errors import DataError, EgoPressDiffError
from egopressdiff.fsutil import check_safe_name

CHUNK = 32  # frames per streamed chunk: memory stays at one chunk of maps


def sequences_to_evaluate(pred_root, reader, split: str | None = None) -> list[tuple[str, str]]:
    """Which ground-truth sequences to score.

    With ``split`` every sequence of that split must have a prediction. Without,
    the sequences ``predict`` recorded in ``predict_info.json``, else every
    prediction file present.
    """
    from egopressdiff.data.splits import select_sequences
    from egopressdiff.evaluation.predictions import list_predictions

    pred_root = Path(pred_root)
    if not pred_root.is_dir():
        raise DataError("prediction folder does not exist", path=pred_root)
    if split:
        return select_sequences(reader, split=split)
    info = pred_root / "predict_info.json"
    if info.is_file():
        try:
            names = json.loads(info.read_text())["sequences"]
            pairs = [tuple(n.split("/", 1)) for n in names]
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as e:
            raise DataError(f"unreadable predict_info.json ({e})", path=info) from None
        for pair in pairs:
            if len(pair) != 2:
                raise DataError(f"predict_info.json lists {'/'.join(pair)!r}, expected participant/sequence",
                                path=info)
            try:
                check_safe_name(pair[0], "participant name")
                check_safe_name(pair[1], "sequence name")
            except EgoPressDiffError as e:
                raise DataError(f"predict_info.json lists {'/'.join(pair)!r}: {e}", path=info) from None
        return pairs
    pairs = [(p, s) for p, s, _ in list_predictions(pred_root)]
    if not pairs:
        raise DataError("no prediction files (<participant>/<sequence>.npz) found", path=pred_root)
    return pairs


def check_evaluable(pred_root, reader, pairs) -> None:
    """Fail before any work, in one line naming the sequence, unless every pair can be scored.

    Each pair must be in the dataset, have a prediction file and have ground truth
    (a recording without the pressure pad can be predicted but not evaluated).
    """
    from egopressdiff.evaluation.predictions import prediction_path

    for participant, sequence in pairs:
        path = prediction_path(pred_root, participant, sequence)
        if participant not in reader.participants() or sequence not in reader.sequences(participant):
            raise DataError(f"prediction for {participant}/{sequence}, which is not in the dataset {reader.root}",
                            path=path, sequence=sequence)
        if not path.is_file():
            raise DataError("no prediction for this ground-truth sequence", path=path, sequence=sequence)
        reader.require_pressure(participant, sequence)


def _items(pred_root, reader, pairs, floor_kpa: float = 0.0):
    from egopressdiff.evaluation.predictions import (
        check_prediction_complete,
        prediction_path,
        read_prediction,
    )

    for participant, sequence in pairs:
        pred = read_prediction(prediction_path(pred_root, participant, sequence))
        # the frames every method can predict (mesh, colour and depth); each must have ground truth
        gt_frames = reader.predictable_frames(participant, sequence)
        rows = check_prediction_complete(pred, gt_frames)
        atlas = reader.atlas(participant, sequence)
        mask = atlas.mask(224)

        def chunks(_p=participant, _s=sequence, _rows=rows, _pred=pred, _frames=gt_frames, _atlas=atlas):
            for start in range(0, len(_frames), CHUNK):
                fr = _frames[start:start + CHUNK]
                gt = np.stack([reader.load_pressure(_p, _s, int(f)) for f in fr])
                verts = np.stack([reader.load_annotation(_p, _s, int(f)).vertices for f in fr])
                area = _atlas.texel_area(verts, 224)
                rows = _rows[start:start + CHUNK]
                std = None if _pred.pressure_std_kpa is None else np.asarray(_pred.pressure_std_kpa[rows])
                pred = np.asarray(_pred.pressure_kpa[rows])
                if floor_kpa > 0:
                    pred = np.where(pred < floor_kpa, 0, pred)
                yield {"pred": pred, "gt": gt, "area": area, "std": std}

        yield {"participant": participant, "sequence": sequence, "mask": mask, "chunks": chunks()}


def evaluate_folder(pred_root, data_root, split: str | None = None, progress: bool = True,
                    floor_kpa: float = 0.0) -> dict:
    """Metrics of a prediction folder against the dataset's ground truth. ``floor_kpa`` > 0 first sets
    predicted values below it to 0, as a model's ``output_floor_kpa`` would have (to choose a floor on
    saved raw predictions without predicting again)."""
    from egopressdiff.data.reader import EgoPressureReader
    from egopressdiff.evaluation.metrics import evaluate_predictions

    reader = EgoPressureReader(data_root)
    pairs = sequences_to_evaluate(pred_root, reader, split)
    check_evaluable(pred_root, reader, pairs)
    return evaluate_predictions(_items(pred_root, reader, pairs, floor_kpa), progress=progress)
