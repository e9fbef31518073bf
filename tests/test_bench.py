"""`egopressdiff bench --config tiny --quick`: the JSON has every documented field, positive.

Only presence and sign are checked, never the values (timings are benchmarks, not tests).
"""

from __future__ import annotations

import json
import math

import numpy as np
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
    assert set(r["targets"]) == {"predict_speedup", "conditioning_overhead_ratio", "data_pipeline_ratio",
                                 "predict_memory_ratio_1024_vs_64", "cached_speedup"}
    # counted FLOPs and the achieved rate; no MFU on a CPU without --peak-tflops, and it says why
    f = r["flops"]
    assert _positive(f["unet_forward"]) and _positive(f["window_without_unet"])
    assert f["train"]["total"] == f["train"]["forward"] + f["train"]["backward"]
    assert f["train_cached"]["total"] < f["train"]["total"]
    for k in ("4", "8", "25"):
        assert _positive(r["mfu"]["sample"][k]["tflops_per_second"]) and r["mfu"]["sample"][k]["mfu"] is None
    assert _positive(r["mfu"]["train"]["tflops_per_second"]) and r["mfu"]["train"]["mfu"] is None
    assert r["peak_tflops"] is None and set(r["skipped"]) == {"mfu"} and "--peak-tflops" in r["skipped"]["mfu"]
    br = r["window_breakdown"]
    assert set(br["seconds"]) == {"unet", "codec_encode", "codec_decode", "clip", "other_encoders", "data",
                                  "host_overhead"}
    assert br["calls"]["unet"] == br["steps"] and br["calls"]["clip"] == 1 and br["calls"]["other_encoders"] == 2
    pb = r["predict_batched"]
    assert set(pb["eager"]) == {"1", "2"} and "compiled" not in pb  # --quick: no compile
    assert _positive(pb["speedup"]) and r["predict_speedup"] == pb["speedup"]
    assert {"backward", "optimizer", "forward_unet"} <= set(r["train_profile"]["seconds"])
    assert r["train_profile"]["top_ops"]
    assert _positive(r["optimizer_step_seconds"]["for_loop"])
    assert len(r["load_average"]["start"]) == 3
    assert "predict 40 frames" in printed and "counted FLOPs" in printed


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
    # several sampling seeds: one row per seed, and different noise gives different predictions
    rows = mod.sweep(tmp_path / "model", fake_root, split="test", steps=(1,), samples=(1,), seeds=[0, 1],
                     output=tmp_path / "pred")
    assert [(r["steps"], r["seed"]) for r in rows] == [(1, 0), (1, 1)]
    a, b = (sorted((tmp_path / "pred" / f"steps-1-samples-1-seed-{s}").rglob("*.npz")) for s in (0, 1))
    assert len(a) == len(b) > 0
    assert not np.array_equal(np.load(a[0])["pressure_kpa"], np.load(b[0])["pressure_kpa"])
    # --floors: each no-floor prediction evaluated once per floor, the floor applied as the model's would be
    from egopressdiff.evaluation.run import evaluate_folder

    rows = mod.sweep(tmp_path / "model", fake_root, split="test", steps=(1,), samples=(1,), seeds=[0],
                     output=tmp_path / "pred", floors=(0.0, 1e6))
    assert [r["floor_kpa"] for r in rows] == [0.0, 1e6]
    pred = tmp_path / "pred" / "steps-1-samples-1-seed-0"
    assert np.load(a[0])["pressure_kpa"].max() > 0  # the saved prediction is the raw sample, unfloored
    raw = evaluate_folder(pred, fake_root, split="test", progress=False)
    assert rows[0]["volumetric_iou"] == pytest.approx(raw["volumetric_iou"])
    zeroed = evaluate_folder(pred, fake_root, split="test", progress=False, floor_kpa=1e6)
    assert rows[1]["mae_kpa"] == pytest.approx(zeroed["mae_kpa"]) and rows[1]["contact_iou"] == 0
    assert rows[1]["mae_kpa"] != pytest.approx(rows[0]["mae_kpa"])


def test_sampling_steps_summary_averages_seeds_and_chooses_the_best_mean():
    """benchmarks/sampling_steps.py --seeds: mean and sd per steps, the steps with the best mean Vol. IoU at
    one sample (fewer steps on a tie), averaged rows never chosen."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "sampling_steps", Path(__file__).resolve().parents[1] / "benchmarks" / "sampling_steps.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)

    def row(k, s, seed, v):
        return {"steps": k, "samples": s, "seed": seed, "volumetric_iou": v, "contact_iou": v, "mae_kpa": 0.1,
                "temporal_accuracy": 0.9, "false_contact_rate": 0.0}

    rows = [row(8, 1, 0, 0.16), row(8, 1, 1, 0.18), row(3, 1, 0, 0.18), row(3, 1, 1, 0.19),
            row(2, 1, 0, 0.20), row(2, 1, 1, 0.10), row(8, 8, 0, 0.30)]
    summ = mod.summarize(rows)
    by = {(r["steps"], r["samples"]): r for r in summ["by_steps"]}
    assert by[(3, 1)]["volumetric_iou"] == pytest.approx(0.185)
    assert by[(3, 1)]["volumetric_iou_sd"] == pytest.approx(0.00707, abs=1e-4)
    assert by[(8, 8)]["volumetric_iou_sd"] is None  # one seed: no spread
    assert summ["chosen_steps"] == 3  # 2 steps' single best seed (0.20) does not win on the mean (0.15)
    tie = mod.summarize([row(6, 1, 0, 0.2), row(4, 1, 0, 0.2)])
    assert tie["chosen_steps"] == 4
    assert "chosen: 3 steps" in mod.format_summary(summ)
    # with floors: the best (steps, floor) pair on the mean; equal means go to fewer steps, then the lower floor
    def frow(k, fl, seed, v):
        return {**row(k, 1, seed, v), "floor_kpa": fl}

    summ = mod.summarize([frow(3, 0.0, 0, 0.18), frow(3, 0.0, 1, 0.18), frow(3, 0.25, 0, 0.23),
                          frow(3, 0.25, 1, 0.22), frow(8, 0.25, 0, 0.21), frow(8, 0.25, 1, 0.22),
                          frow(3, 0.5, 0, 0.22), frow(3, 0.5, 1, 0.23)])
    assert (summ["chosen_steps"], summ["chosen_floor_kpa"]) == (3, 0.25)
    assert summ["floors_kpa"] == [0.0, 0.25, 0.5]
    assert "chosen: 3 steps, floor 0.25 kPa" in mod.format_summary(summ)
    assert summ["by_steps"][0]["floor_kpa"] == 0.0


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


def test_bench_refuses_a_bad_peak(capsys):
    from egopressdiff.cli.main import main

    assert main(["bench", "--config", "tiny", "--peak-tflops", "0"]) == 2
    assert "--peak-tflops must be > 0" in capsys.readouterr().err


def test_flops_counted_on_meta_tensors_equal_a_real_forward():
    """The meta-tensor count (what bench reports) is what the real model computes, on every part."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    from egopressdiff.bench import count_flops
    from egopressdiff.models import EgoPressDiff
    from egopressdiff.models.testing import make_dummy_batch

    f = count_flops("tiny", batch_size=2, clip_length=4)
    torch.manual_seed(0)
    model = EgoPressDiff.from_config("tiny", clip_length=4).eval()
    batch = make_dummy_batch(1, 4, crop_size=model.config.crop_size)
    # the CPU's fused attention kernel has no FLOP formula in torch's counter; the math one does
    with torch.no_grad(), sdpa_kernel([SDPBackend.MATH]):
        prep = model.prepare_conditions(batch)
        x = torch.randn(1, 4, model.latent_channels, *model.latent_size)
        with FlopCounterMode(display=False) as fc:
            model.denoise(x, torch.tensor([1.0]), prep)
    assert f["unet_forward"] == fc.get_total_flops() > 0
    assert set(f["window_stages"]) == {"unet", "clip", "other_encoders"}  # the tiny codec is a reshape
    model.train()
    b2 = make_dummy_batch(2, 4, crop_size=model.config.crop_size)
    with sdpa_kernel([SDPBackend.MATH]):
        with FlopCounterMode(display=False) as fwd:
            loss = model.training_loss(b2)
        with FlopCounterMode(display=False) as bwd:
            loss.backward()
    assert f["train"]["forward"] == fwd.get_total_flops()
    assert f["train"]["backward"] == bwd.get_total_flops()
    assert f["train_cached"]["forward"] < f["train"]["forward"]  # the frozen encoders are read, not run
    assert f["train_cached"]["backward"] == f["train"]["backward"]  # they have no backward either way


def test_peak_and_mfu_arithmetic():
    from egopressdiff.bench import model_flop_utilisation, peak_tflops_for, unet_calls

    assert peak_tflops_for({"gpu": "NVIDIA H100 80GB HBM3"}, "bf16", None) == (989.0, "H100 bf16 dense (built-in table)")
    assert peak_tflops_for({"gpu": "NVIDIA H200"}, "bf16", None)[0] == 989.0
    assert peak_tflops_for({"gpu": "NVIDIA H100"}, "fp32", None)[0] is None  # the table is bf16
    assert peak_tflops_for({"gpu": "Some GPU"}, "bf16", None)[0] is None
    assert peak_tflops_for({"gpu": None}, "fp32", None)[0] is None
    assert peak_tflops_for({"gpu": None}, "fp32", 2.5) == (2.5, "--peak-tflops")
    assert unet_calls(4, "euler") == 4 and unet_calls(4, "heun") == 7
    flops = {"sampler": "euler", "unet_forward": 10**12, "window_without_unet": 2 * 10**12,
             "train": {"total": 6 * 10**12}, "train_cached": {"total": 3 * 10**12}}
    res = {"sample": {"4": {"seconds_per_window": 2.0}, "8": None}, "train": {"seconds_per_step": 3.0},
           "train_cached": None, "window_breakdown": {"steps": 4, "seconds": {"unet": 0.5}}}
    m = model_flop_utilisation(res, flops, peak=10.0)
    assert m["sample"]["4"] == {"flops_per_window": 6 * 10**12, "tflops_per_second": 3.0, "mfu": 0.3}
    assert "8" not in m["sample"] and m["train_cached"] is None
    assert m["train"] == {"flops_per_step": 6 * 10**12, "tflops_per_second": 2.0, "mfu": 0.2}
    assert m["sample_unet_only"]["tflops_per_second"] == 8.0
    assert model_flop_utilisation(res, flops, peak=None)["train"]["mfu"] is None


@pytest.fixture(scope="module")
def small_recording(tmp_path_factory):
    from egopressdiff.bench import in_memory_recording

    return in_memory_recording(tmp_path_factory.mktemp("rec"), 12)


def test_window_breakdown_and_batched_predict(small_recording, one_thread, monkeypatch):
    import torch

    from egopressdiff.bench import measure_predict_batched, measure_window_breakdown
    from egopressdiff.models import EgoPressDiff
    from egopressdiff.pipelines import EgoPressDiffPipeline

    assert small_recording["rgb"].shape[0] == 12 and small_recording["vertices"].shape == (12, 778, 3)
    torch.manual_seed(0)
    model = EgoPressDiff.from_config("tiny", clip_length=4).eval()
    br = measure_window_breakdown(EgoPressDiffPipeline(model), small_recording, steps=2, device="cpu", repeats=1)
    assert br["frames"] == 4 and br["calls"] == {"unet": 2, "codec_encode": 1, "codec_decode": 1, "clip": 1,
                                                 "other_encoders": 2, "data": 1}
    assert all(_positive(br["seconds"][k]) for k in ("unet", "clip", "other_encoders", "data"))
    assert abs(sum(br["share"].values()) - 1.0) < 1e-3 and br["seconds"]["host_overhead"] > -1e-3
    compiled = []  # torch.compile itself is tested in test_compile.py; here, what the bench does around it
    monkeypatch.setattr(EgoPressDiffPipeline, "compile", lambda self, **kw: compiled.append(kw) or self)
    pb = measure_predict_batched(model, small_recording, steps=1, batch_sizes=(1, 2), device="cpu", repeats=1,
                                 precision="fp32", compile_backend="inductor", window=4, overlap=1)
    assert compiled and all(kw == {"backend": "inductor", "dynamic": False} for kw in compiled)
    assert pb["frames"] == 12 and set(pb["eager"]) == {"1", "2"} and pb["eager"]["1"]["speedup"] == 1.0
    assert set(pb["compiled"]) == {"1", "2"}  # batch size 1, the best eager one and the largest
    for v in list(pb["eager"].values()) + list(pb["compiled"].values()):
        assert abs(v["frames_per_second"] * v["seconds"] - 12) < 0.01  # frames / s
    up = {("eager", int(k)): v["speedup"] for k, v in pb["eager"].items()}
    up.update({("compiled", int(k)): v["speedup"] for k, v in pb["compiled"].items()})
    best = max(up, key=up.get)  # against eager batch size 1 (for compiled: timed alternately with it)
    assert (pb["best"]["variant"], pb["best"]["batch_size"]) == best and pb["speedup"] == up[best]
    c1 = pb["compiled"]["1"]
    assert abs(c1["speedup"] - c1["eager_batch_1_seconds"] / c1["seconds"]) < 0.01 * c1["speedup"]
    assert all(_positive(v["first_call_seconds"]) for v in pb["compiled"].values())


def test_training_profile_and_optimizer_variants(one_thread):
    import torch

    from egopressdiff.bench import measure_optimizers, profile_train_step
    from egopressdiff.models import EgoPressDiff
    from egopressdiff.models.testing import make_dummy_batch

    torch.manual_seed(0)
    model = EgoPressDiff.from_config("tiny", clip_length=4)
    batch = make_dummy_batch(1, 4, crop_size=model.config.crop_size)
    tp = profile_train_step(model, batch, "cpu", amp=False, repeats=1, top=5)
    for k in ("forward_unet", "forward_clip", "forward_other_encoders", "backward", "optimizer"):
        assert _positive(tp["seconds"][k]), k
    assert abs(sum(tp["share"].values()) - 1.0) < 1e-3 and len(tp["top_ops"]) == 5
    assert all(op["op"] and _positive(op["self_seconds"]) and op["calls"] >= 1 for op in tp["top_ops"])
    before = [p.detach().clone() for p in model.trainable_parameters()]
    op = measure_optimizers(model, batch, "cpu", amp=False, repeats=1)
    assert all(_positive(op[k]) for k in ("for_loop", "foreach", "fused")), op
    assert all(p.grad is None for p in model.trainable_parameters())
    assert max((a - p).abs().max().item() for a, p in zip(before, model.trainable_parameters())) < 1e-6


def test_temporal_errors_tool_splits_the_disagreeing_frames(synth_root, tmp_path):
    """benchmarks/temporal_errors.py: the ground truth itself has no error; one frame dropped from a
    press is one missed frame at its true peak, one frame lit just before a touch is false contact
    beside the touch, one lit on a hover is other false contact."""
    import importlib.util
    from pathlib import Path

    import numpy as np

    from egopressdiff.data.layout import gesture_family
    from egopressdiff.data.reader import EgoPressureReader
    from egopressdiff.evaluation.predictions import write_prediction

    spec = importlib.util.spec_from_file_location(
        "temporal_errors", Path(__file__).resolve().parents[1] / "benchmarks" / "temporal_errors.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    reader = EgoPressureReader(synth_root)
    truth, edited = tmp_path / "truth", tmp_path / "edited"
    total = 0
    missed_peak = lit_before = lit_hover = None
    for p in reader.participants():
        for s in reader.sequences(p):
            frames = reader.predictable_frames(p, s)
            mask = reader.atlas(p, s).mask(224) > 0
            gt = np.stack([reader.load_pressure(p, s, int(f)) for f in frames]).astype(np.float32)
            total += len(frames)
            write_prediction(truth, p, s, frames, gt)
            on = (gt[:, mask] > 1.0).any(axis=1)
            maps = gt.copy()
            if gesture_family(s) == "hover" and lit_hover is None:
                maps[0][mask] = 5.0
                lit_hover = True
            elif on.any() and not on[0] and missed_peak is None:
                first = int(np.argmax(on))
                missed_peak = float(gt[first][mask].max())
                maps[first] = 0.0                                   # the touch's first frame dropped
                maps[first - 1][mask] = np.where(maps[first - 1][mask] > 0, maps[first - 1][mask], 5.0)
                lit_before = True                                  # the frame before it lit
                before_gt_max = float(gt[first - 1][mask].max())
                before_pred_max = float(maps[first - 1][mask].max())
            write_prediction(edited, p, s, frames, maps)
    assert missed_peak is not None and lit_hover and lit_before
    ok = mod.temporal_errors(synth_root, truth)
    assert ok["frames"] == total and ok["temporal_accuracy"] == 1.0
    assert ok["false_contact_beside_touch"] == ok["false_contact_other"] == ok["missed_contact"] == 0
    r = mod.temporal_errors(synth_root, edited)
    assert (r["false_contact_beside_touch"], r["false_contact_other"], r["missed_contact"]) == (1, 1, 1)
    assert abs(r["missed_contact_median_gt_max_kpa"] - missed_peak) < 1e-4
    assert r["missed_contact_median_pred_max_kpa"] == 0.0  # the dropped frame predicts nothing
    assert r["false_contact_beside_touch_gt_zero"] == int(before_gt_max == 0)
    assert abs(r["false_contact_beside_touch_median_pred_max_kpa"] - before_pred_max) < 1e-4
    assert abs(r["temporal_accuracy"] - (total - 3) / total) < 1e-9


def test_choose_floor_applies_each_floor_to_saved_predictions_and_writes_the_best(fake_root, tmp_path, capsys):
    """scripts/choose_floor.py: a prediction that is the truth plus a faint residue everywhere scores best
    with a floor just above the residue; the choice is written; a missing folder is one line, exit 2."""
    import importlib.util
    from pathlib import Path

    from egopressdiff.data.reader import EgoPressureReader
    from egopressdiff.evaluation.predictions import write_prediction

    spec = importlib.util.spec_from_file_location(
        "choose_floor", Path(__file__).resolve().parents[1] / "scripts" / "choose_floor.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    reader = EgoPressureReader(fake_root)
    p, s = "p_002", "p_002_pinch-zoom_5x_right"
    frames = reader.predictable_frames(p, s)
    gt = np.stack([reader.load_pressure(p, s, int(f)) for f in frames]).astype(np.float32)
    assert gt.max() > 1.0 and (gt == 0).mean() > 0.5  # contact and an empty background to put residue on
    write_prediction(tmp_path / "pred", p, s, frames, gt + np.float32(0.3))
    best = tmp_path / "best.txt"
    assert mod.main([str(tmp_path / "pred"), str(fake_root), "--floors", "0", "0.5", "1e6",
                     "--best-to", str(best)]) == 0
    assert float(best.read_text()) == 0.5
    lines = capsys.readouterr().out.splitlines()
    vol = {float(ln.split()[0]): float(ln.split()[2]) for ln in lines[1:4]}
    assert vol[0.5] > 0.95 and vol[0.5] > vol[0.0] + 0.05 and vol[1e6] == 0.0
    assert mod.main([str(tmp_path / "nothing"), str(fake_root)]) == 2
    assert "choose_floor: error:" in capsys.readouterr().err
