"""The prediction file format: write/read/validate, streaming writer, completeness check."""

import numpy as np
import pytest

from egopressdiff.errors import DataError, EgoPressDiffError
from egopressdiff.evaluation.predictions import (
    PredictionWriter,
    check_prediction_complete,
    list_predictions,
    prediction_path,
    read_prediction,
    write_prediction,
)

P, S = "p_001", "p_001_press_palm_high_x5_right"


def maps(t, seed=0):
    return np.random.default_rng(seed).gamma(0.5, 2.0, (t, 224, 224)).astype(np.float32)


def test_roundtrip_with_std(tmp_path):
    frames = np.array([3, 4, 7])
    m, s = maps(3), maps(3, 1)
    path = write_prediction(tmp_path, P, S, frames, m, std=s)
    assert path == tmp_path / P / f"{S}.npz"
    pred = read_prediction(tmp_path, P, S)
    assert pred.frame.dtype == np.int64 and pred.pressure_kpa.dtype == np.float32
    np.testing.assert_array_equal(pred.frame, frames)
    np.testing.assert_array_equal(pred.pressure_kpa, m)
    np.testing.assert_array_equal(pred.pressure_std_kpa, s)
    assert read_prediction(path).sequence == S
    assert list_predictions(tmp_path) == [(P, S, path)]
    assert not [f for f in (tmp_path / P).iterdir() if f.name.startswith(".")]


@pytest.mark.parametrize("bad", ["../../x", "/abs/path", "a/b", ".."])
def test_unsafe_names_refused(tmp_path, bad):
    with pytest.raises(EgoPressDiffError):
        write_prediction(tmp_path, P, bad, [1], maps(1))
    with pytest.raises(EgoPressDiffError):
        prediction_path(tmp_path, bad, S)


def _raw(tmp_path, **arrays):
    path = tmp_path / P / f"{S}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_prediction(tmp_path, P, S)


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"frame": np.array([1, 2])}, "lacks key"),
        ({"frame": np.array([1.0, 2.0]), "pressure_kpa": maps(2)}, "integers"),
        ({"frame": np.array([1, 2]), "pressure_kpa": maps(2).astype(np.int32)}, "floating"),
        ({"frame": np.array([1, 2]), "pressure_kpa": np.zeros((2, 100, 100), np.float32)}, "shape"),
        ({"frame": np.array([1, 2, 3]), "pressure_kpa": maps(2)}, "entries"),
        ({"frame": np.array([2, 1]), "pressure_kpa": maps(2)}, "sorted"),
        ({"frame": np.array([1, 1]), "pressure_kpa": maps(2)}, "unique"),
    ],
)
def test_invalid_files_rejected(tmp_path, arrays, message):
    path = _raw(tmp_path, **arrays)
    with pytest.raises(DataError, match=message) as ei:
        read_prediction(path)
    assert str(path) in str(ei.value)


def test_nan_and_negative_name_the_frame(tmp_path):
    m = maps(3)
    m[1, 5, 5] = np.nan
    path = _raw(tmp_path, frame=np.array([10, 11, 12]), pressure_kpa=m)
    with pytest.raises(DataError, match="frame 11"):
        read_prediction(path)
    m = maps(3)
    m[2, 0, 0] = -1.0
    _raw(tmp_path, frame=np.array([10, 11, 12]), pressure_kpa=m)
    with pytest.raises(DataError, match="negative.*frame 12"):
        read_prediction(path)
    with pytest.raises(DataError):
        write_prediction(tmp_path, P, "other", [1, 2, 3], m)
    assert not (tmp_path / P / "other.npz").exists()


def test_corrupt_file(tmp_path):
    path = tmp_path / P / f"{S}.npz"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="cannot read"):
        read_prediction(path)


def test_check_complete(tmp_path):
    write_prediction(tmp_path, P, S, [1, 2, 4, 5], maps(4))
    pred = read_prediction(tmp_path, P, S)
    np.testing.assert_array_equal(check_prediction_complete(pred, [2, 4]), [1, 2])
    with pytest.raises(DataError, match=f"sequence {S}.*frame 3"):
        check_prediction_complete(pred, [1, 2, 3, 4, 6])


def test_streaming_writer_appending(tmp_path):
    m = maps(5)
    with PredictionWriter(tmp_path, P, S, 5, with_std=True) as w:
        for i in range(5):
            w.add(100 + i, m[i], std=m[i] * 0.1)
        assert not (tmp_path / P / f"{S}.npz").exists()  # nothing under the final name before close
    pred = read_prediction(tmp_path, P, S)
    np.testing.assert_array_equal(pred.frame, np.arange(100, 105))
    np.testing.assert_array_equal(pred.pressure_kpa, m)
    np.testing.assert_allclose(pred.pressure_std_kpa, m * 0.1)
    assert [f.name for f in (tmp_path / P).iterdir()] == [f"{S}.npz"]


def test_streaming_writer_put_by_index_any_order(tmp_path):
    m = maps(4)
    frames = [2, 3, 5, 8]
    with PredictionWriter(tmp_path, P, S, frames) as w:
        for i in (3, 0, 2, 1):
            w.put(i, m[i])
    pred = read_prediction(tmp_path, P, S)
    np.testing.assert_array_equal(pred.frame, frames)
    np.testing.assert_array_equal(pred.pressure_kpa, m)


def test_streaming_writer_exception_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        with PredictionWriter(tmp_path, P, S, 3) as w:
            w.add(1, maps(1)[0])
            raise RuntimeError("boom")
    assert list((tmp_path / P).iterdir()) == []


def test_streaming_writer_incomplete_is_an_error(tmp_path):
    w = PredictionWriter(tmp_path, P, S, [1, 2, 3])
    w.put(0, maps(1)[0])
    with pytest.raises(DataError, match="1 of 3.*frame 2"):
        w.close()
    assert list((tmp_path / P).iterdir()) == []


def test_streaming_writer_rejects_unsorted(tmp_path):
    w = PredictionWriter(tmp_path, P, S, 3)
    w.add(5, maps(1)[0])
    with pytest.raises(DataError, match="sorted"):
        w.add(5, maps(1)[0])
    w.abort()
    assert list((tmp_path / P).iterdir()) == []


def test_streaming_writer_memory_is_flat(tmp_path):
    """Resident growth while streaming 300 frames (60 MB of maps) stays far below their size."""
    import resource

    m = maps(1)[0]
    w = PredictionWriter(tmp_path, P, S, 300)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    for i in range(300):
        w.add(i + 1, m)
    w.close()
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 40, grown_mib
    assert len(read_prediction(tmp_path, P, S)) == 300
