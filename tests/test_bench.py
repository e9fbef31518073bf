"""`egopressdiff bench --config tiny --quick`: the JSON has every documented field, positive.

Only presence and sign are checked, never the values (timings are benchmarks, not tests).
"""

from __future__ import annotations

import json
import math

import pytest

pytest.importorskip("egopressdiff.models")


def _positive(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


@pytest.fixture()
def one_thread(monkeypatch):
    """One torch thread: on a shared 2-core machine two spinning OpenMP threads can slow the
    quick bench down many times over when another process holds a core."""
    import torch

    before = torch.get_num_threads()
    monkeypatch.setenv("EGOPRESSDIFF_NUM_THREADS", "1")
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
def test_bench_quick_json_fields(tmp_path, capsys, one_thread):
    from egopressdiff.cli.main import main

    out = tmp_path / "bench.json"
    assert main(["bench", "--config", "tiny", "--quick", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "conditioning overhead" in printed and "target cached_speedup" in printed
    r = json.loads(out.read_text())
    m = r["machine"]
    assert m["cpu"] and _positive(m["physical_cores"]) and _positive(m["torch_threads"])
    assert {"torch", "diffusers", "transformers", "egopressdiff"} <= set(m["versions"])
    assert r["config"] == "tiny" and r["settings"]["quick"] is True
    for k in ("seconds_per_step", "clips_per_second", "peak_memory_mb"):
        assert _positive(r["train"][k]), k
    assert set(r["sample"]) == {"4", "8", "25"}
    for steps, s in r["sample"].items():
        for k in ("seconds_per_window", "frames_per_second", "peak_memory_mb"):
            assert _positive(s[k]), (steps, k)
    for k in ("conditioning_overhead_ratio", "posenet_share", "vertex_encoder_share", "data_pipeline_ratio",
              "predict_memory_ratio_1024_vs_64", "cached_speedup"):
        assert _positive(r[k]), k
    assert set(r["clip_length_seconds"]) == {"8", "16", "32"}
    assert all(_positive(v) for v in r["clip_length_seconds"].values())
    assert r["posenet_share"] < 1 and r["vertex_encoder_share"] < 1
    assert set(r["targets"]) == {"conditioning_overhead_ratio", "data_pipeline_ratio",
                                 "predict_memory_ratio_1024_vs_64", "cached_speedup"}
    assert r["skipped"] == {}


def test_bench_refuses_bad_device(capsys):
    import torch

    from egopressdiff.cli.main import main

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    assert main(["bench", "--config", "tiny", "--device", "cuda"]) == 2
    assert "no CUDA device" in capsys.readouterr().err


def test_peak_memory_and_median_helpers():
    import numpy as np

    from egopressdiff.bench import PeakMemory, median_time

    with PeakMemory("cpu") as mem:
        a = np.ones(20_000_000)  # 160 MB touched
        a.sum()
    assert mem.peak_mb is not None and mem.peak_mb > 100
    del a
    assert median_time(lambda: None, 3) >= 0


def test_sampling_steps_tool_on_an_untrained_tiny_model(fake_root, tmp_path):
    """benchmarks/sampling_steps.py: one row per (steps, samples) with the four metrics and the time."""
    import importlib.util
    from pathlib import Path

    import torch

    from egopressdiff.models import EgoPressDiff

    spec = importlib.util.spec_from_file_location(
        "sampling_steps", Path(__file__).resolve().parents[1] / "benchmarks" / "sampling_steps.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.manual_seed(0)
    EgoPressDiff.from_config("tiny", clip_length=8, crop_size=32).save_pretrained(tmp_path / "model")
    rows = mod.sweep(tmp_path / "model", fake_root, split="test", steps=(2, 1), samples=(1,))
    assert [(r["steps"], r["samples"]) for r in rows] == [(2, 1), (1, 1)]
    for r in rows:
        assert r["frames"] > 0 and _positive(r["seconds"])
        for k in ("volumetric_iou", "contact_iou", "mae_kpa", "temporal_accuracy"):
            assert r[k] is not None and r[k] >= 0
    assert "vol IoU" in mod.format_rows(rows)


def test_hover_false_contact_tool_counts_only_hover_frames_and_applies_floors(synth_root, tmp_path, capsys):
    """benchmarks/hover_false_contact.py: false contact on the hover sequences at each floor, nothing else."""
    import importlib.util
    from pathlib import Path

    import numpy as np

    from egopressdiff.data.layout import gesture_family
    from egopressdiff.data.reader import EgoPressureReader
    from egopressdiff.evaluation.predictions import write_prediction

    spec = importlib.util.spec_from_file_location(
        "hover_false_contact", Path(__file__).resolve().parents[1] / "benchmarks" / "hover_false_contact.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    reader = EgoPressureReader(synth_root)
    hover_frames = hot_frames = 0
    for p in reader.participants():
        for s in reader.sequences(p):
            frames = reader.annotated_frames(p, s)
            mask = reader.atlas(p, s).mask(224).astype(bool)
            maps = np.zeros((len(frames), 224, 224), np.float32)
            if gesture_family(s) == "hover":
                hover_frames += len(frames)
                hot_frames += len(range(0, len(frames), 2))
                maps[::2, mask] = 1.5   # a weak blob over the hand in every other hover frame
            else:
                maps[:, mask] = 50.0    # contact sequences must not count
            write_prediction(tmp_path / "pred", p, s, frames, maps)
    assert hover_frames > 0
    assert mod.main([str(synth_root), str(tmp_path / "pred"), "--floors", "0", "2"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    (_, f0, fc0, max0, share0, n0), (_, f2, fc2, max2, share2, n2) = rows
    assert int(n0) == int(n2) == hover_frames
    assert abs(float(fc0) - hot_frames / hover_frames) < 1e-3
    assert float(max0) == (1.5 if hot_frames * 2 > hover_frames else 0.75)  # median of 1.5s and 0s
    assert abs(float(share0) - 100 * hot_frames / hover_frames) < 0.1  # hot frames: every hand texel
    assert float(fc2) == 0.0 and float(max2) == 0.0 and float(share2) == 0.0
