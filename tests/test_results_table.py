"""scripts/results_table.py: the README table from `evaluate --json` files."""

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "results_table.py"


@pytest.fixture(scope="module")
def rt():
    spec = importlib.util.spec_from_file_location("results_table", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def metrics(vol, **extra):
    return {"contact_iou": 0.5, "volumetric_iou": vol, "mae_kpa": 0.04, "temporal_accuracy": 0.9,
            "false_contact_rate": 0.1, "force_error_n": 1.2, "num_frames": 10, **extra}


def write(tmp_path, name, m):
    p = tmp_path / f"{name}.json"
    p.write_text(json.dumps(m))
    return p


def rows_of(table):
    return {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in table.splitlines()[2:] if line.startswith("|")}


def test_ratio_to_the_best_baseline(tmp_path, rt, capsys):
    files = [write(tmp_path, "egopressdiff-uv", metrics(0.6)), write(tmp_path, "baseline-cls-uv", metrics(0.4)),
             write(tmp_path, "baseline-reg-uv", metrics(0.5))]
    assert rt.main([str(f) for f in files]) == 0
    table = capsys.readouterr().out
    header = table.splitlines()[0]
    assert rt.RATIO_LABEL in header and "within 2 std" not in header
    rows = rows_of(table)
    ratio = header.split("|")[1:-1].index(f" {rt.RATIO_LABEL} ") - 1
    assert rows["egopressdiff-uv"][ratio] == "1.20×"  # 0.6 / 0.5, the best baseline (regression)
    assert rows["baseline-reg-uv"][ratio] == "1.00×" and rows["baseline-cls-uv"][ratio] == "0.80×"
    assert rows["egopressdiff-uv"][1] == "0.600" and rows["egopressdiff-uv"][2] == "0.040"
    assert "Best per-frame baseline: baseline-reg-uv" in table


def test_baseline_flag_and_no_baseline(tmp_path, rt):
    rows = [("ours", metrics(0.3)), ("pformer", metrics(0.6))]
    assert rt.RATIO_LABEL not in rt.markdown_table(rows)  # no baseline: no ratio column
    table = rt.markdown_table(rows, baselines={"pformer"})
    assert rows_of(table)["ours"][-1] == "0.50×"


def test_uncertainty_columns_when_present(tmp_path, rt):
    spread = {"std_coverage_2sd_contact": 0.91, "std_coverage_2sd_hover": 0.99, "std_error_corr_contact": 0.42,
              "std_error_corr_hover": None}
    rows = [("egopressdiff-uv-8samples", metrics(0.6, **spread)), ("baseline-cls-uv", metrics(0.5))]
    table = rt.markdown_table(rows)
    assert "within 2 std, contact" in table.splitlines()[0]
    got = rows_of(table)
    assert got["egopressdiff-uv-8samples"][-4:] == ["0.910", "0.990", "0.420", "-"]
    assert got["baseline-cls-uv"][-4:] == ["-", "-", "-", "-"]


def test_bad_file_is_one_line_exit_2(tmp_path, rt, capsys):
    bad = tmp_path / "x.json"
    bad.write_text("{not json")
    assert rt.main([str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "x.json" in err
    assert rt.main([str(write(tmp_path, "y", {"a": 1}))]) == 2


def test_group_seeds_mean_and_spread(tmp_path, rt, capsys):
    files = [write(tmp_path, "egopressdiff-uv", metrics(0.60)), write(tmp_path, "egopressdiff-uv-s1", metrics(0.64)),
             write(tmp_path, "egopressdiff-uv-8samples", metrics(0.70)),
             write(tmp_path, "egopressdiff-uv-s1-8samples", metrics(0.72)),
             write(tmp_path, "baseline-cls-uv", metrics(0.40)), write(tmp_path, "baseline-cls-uv-s1", metrics(0.42))]
    assert rt.main([str(f) for f in files] + ["--group-seeds"]) == 0
    rows = rows_of(capsys.readouterr().out)
    assert set(rows) == {"egopressdiff-uv", "egopressdiff-uv-8samples", "baseline-cls-uv"}
    assert rows["egopressdiff-uv"][0] == "2"  # seeds
    assert rows["egopressdiff-uv"][2] == "0.620 ± 0.028"  # mean, sample sd of 0.60 and 0.64
    assert rows["egopressdiff-uv"][7] == f"{0.62 / 0.41:.2f}×"  # ratio of the means
    single = rt.group_seeds([("baseline-reg-uv", metrics(0.5))])
    assert rt.markdown_table(single).splitlines()[2].split("|")[3].strip() == "0.500"  # one seed: no ± part
