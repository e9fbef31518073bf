"""Security: nothing is ever unpickled (MANO .pkl files only through a restricted unpickler),
names from a dataset or a prediction folder never escape the output directory, and existing
outputs are never overwritten without --overwrite."""

from __future__ import annotations

import ast
import io
import os
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import egopressdiff
from egopressdiff.cli.main import main
from egopressdiff.data.mano_pkl import (
    RestrictedUnpickler,
    load_mano_model,
    load_mano_pkl,
    load_pickle_restricted,
)
from egopressdiff.errors import DataError, EgoPressDiffError, MissingAssetError
from egopressdiff.fsutil import check_safe_name

SRC = Path(egopressdiff.__file__).resolve().parent
UNPICKLER_MODULE = SRC / "data" / "mano_pkl.py"


# ----------------------------------------------------------------------------- (a) source scan
BANNED_CALLS = {
    "pickle.load", "pickle.loads", "pickle.Unpickler", "cPickle.load", "cPickle.loads", "_pickle.load",
    "_pickle.loads", "torch.load", "torch.jit.load", "yaml.unsafe_load", "yaml.full_load", "marshal.load",
    "marshal.loads", "dill.load", "dill.loads", "joblib.load", "pd.read_pickle", "pandas.read_pickle",
    "shelve.open", "eval", "exec",
}
BANNED_MODULES = {"pickle", "cPickle", "_pickle", "dill", "marshal", "shelve", "joblib", "cloudpickle"}


def _dotted(node) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _kw(call: ast.Call, name: str):
    for k in call.keywords:
        if k.arg == name:
            return k.value
    return None


def unsafe_loads(source: str, filename: str = "<src>", pickle_allowed: bool = False) -> list[str]:
    """Places in ``source`` that could run code from a file: pickle/torch/yaml loads, eval/exec,
    np.load without ``allow_pickle=False``."""
    found = []
    tree = ast.parse(source, filename)
    for node in ast.walk(tree):
        where = f"{filename}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] in BANNED_MODULES and not (pickle_allowed and a.name == "pickle"):
                    found.append(f"{where} import {a.name}")
        elif isinstance(node, ast.ImportFrom):
            if (node.module or "").split(".")[0] in BANNED_MODULES:
                found.append(f"{where} from {node.module} import ...")
            if node.module in ("torch", "yaml", "numpy") and any(a.name in ("load", "unsafe_load") for a in node.names):
                found.append(f"{where} from {node.module} import load")
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name is None:
                continue
            if name in BANNED_CALLS and not (pickle_allowed and name == "pickle.Unpickler"):
                found.append(f"{where} {name}(...)")
            elif name == "yaml.load":
                loader = _dotted(_kw(node, "Loader")) if _kw(node, "Loader") is not None else None
                if loader not in ("yaml.SafeLoader", "yaml.CSafeLoader", "SafeLoader", "CSafeLoader"):
                    found.append(f"{where} yaml.load without SafeLoader")
            elif name in ("np.load", "numpy.load"):
                ap = _kw(node, "allow_pickle")
                if not (isinstance(ap, ast.Constant) and ap.value is False):
                    found.append(f"{where} {name} without allow_pickle=False")
        elif isinstance(node, ast.ClassDef) and not pickle_allowed:
            if any(_dotted(b) in ("pickle.Unpickler", "Unpickler") for b in node.bases):
                found.append(f"{where} class {node.name}(Unpickler)")
    return found


def test_the_scanner_catches_unsafe_code():
    bad = """
import pickle
import numpy as np, torch, yaml
pickle.load(f); torch.load(p); np.load(p); np.load(p, allow_pickle=True); yaml.load(t)
yaml.load(t, Loader=yaml.Loader); eval("1"); exec("x=1")
"""
    found = unsafe_loads(bad)
    for what in ("import pickle", "pickle.load", "torch.load", "np.load without", "yaml.load without", "eval(",
                 "exec("):
        assert any(what in f for f in found), (what, found)
    assert len([f for f in found if "np.load" in f]) == 2 and len([f for f in found if "yaml.load" in f]) == 2
    ok = "import numpy as np, yaml\nnp.load(p, allow_pickle=False)\nyaml.safe_load(t)\nmodel.eval()\n" \
         "yaml.load(t, Loader=yaml.SafeLoader)\n"
    assert unsafe_loads(ok) == []


def test_no_unsafe_loading_anywhere_in_the_package():
    problems = []
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 30
    for f in files:
        problems += unsafe_loads(f.read_text(encoding="utf-8"), str(f.relative_to(SRC)),
                                 pickle_allowed=(f == UNPICKLER_MODULE))
    assert problems == []


def test_the_unpickler_module_never_calls_plain_pickle_load():
    src = UNPICKLER_MODULE.read_text()
    tree = ast.parse(src)
    calls = {_dotted(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    assert not calls & {"pickle.load", "pickle.loads"}
    assert "RestrictedUnpickler" in calls


def test_third_party_weights_are_read_as_safetensors_only():
    src = (SRC / "models" / "svd_loading.py").read_text()
    assert '"use_safetensors": True' in src and '"local_files_only": True' in src


# ----------------------------------------------------------------------------- (b) restricted unpickler
def mano_like() -> dict:
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    jreg = np.zeros((16, 778))
    jreg[np.arange(16), rng.integers(0, 778, 16)] = 1.0
    return {
        "v_template": rng.normal(size=(778, 3)),
        "f": rng.integers(0, 778, (1538, 3)).astype(np.uint32),
        "weights": rng.random((778, 16)),
        "J_regressor": sp.csc_matrix(jreg),
        "shapedirs": rng.normal(size=(778, 3, 10)),
        "posedirs": rng.normal(size=(778, 3, 135)),
        "kintree_table": np.array([[4294967295, 0, 1], [0, 1, 2]], dtype=np.int64),
        "hands_components": rng.normal(size=(45, 45)),
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_legit_mano_pickle_loads(tmp_path, protocol):
    d = mano_like()
    path = tmp_path / "MANO_RIGHT.pkl"
    path.write_bytes(pickle.dumps(d, protocol=protocol))
    out = load_mano_pkl(path)
    for k in ("v_template", "f", "weights", "shapedirs", "posedirs", "kintree_table", "hands_components"):
        np.testing.assert_array_equal(out[k], d[k])
        assert isinstance(out[k], np.ndarray)
    np.testing.assert_array_equal(out["J_regressor"], d["J_regressor"].toarray())
    assert "bs_style" not in out  # strings are not arrays


@pytest.fixture
def fake_chumpy(monkeypatch):
    """A stand-in ``chumpy.ch.Ch`` class (chumpy itself is not installed, and never imported)."""
    chumpy = types.ModuleType("chumpy")
    ch = types.ModuleType("chumpy.ch")

    class Ch:
        def __init__(self, x):
            self.x = x
            self._cache = {}

    Ch.__module__ = "chumpy.ch"
    Ch.__qualname__ = "Ch"
    ch.Ch = Ch
    chumpy.ch = ch
    monkeypatch.setitem(sys.modules, "chumpy", chumpy)
    monkeypatch.setitem(sys.modules, "chumpy.ch", ch)
    return Ch


@pytest.mark.parametrize("protocol", [2, 4])
def test_chumpy_objects_become_plain_arrays(tmp_path, fake_chumpy, monkeypatch, protocol):
    d = mano_like()
    d["shapedirs"] = fake_chumpy(d["shapedirs"])
    d["v_template"] = fake_chumpy(d["v_template"])
    blob = pickle.dumps(d, protocol=protocol)
    assert b"chumpy" in blob
    path = tmp_path / "MANO_LEFT.pkl"
    path.write_bytes(blob)
    monkeypatch.delitem(sys.modules, "chumpy")
    monkeypatch.delitem(sys.modules, "chumpy.ch")
    out = load_mano_pkl(path)
    assert "chumpy" not in sys.modules  # read without importing chumpy
    np.testing.assert_array_equal(out["shapedirs"], d["shapedirs"].x)
    np.testing.assert_array_equal(out["v_template"], d["v_template"].x)


class _Reduce:
    """An object whose unpickling calls ``func(*args)``."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


def _evil_payloads(marker: Path):
    import subprocess

    touch = f"touch {marker}"
    return {
        "os.system": _Reduce(os.system, (touch,)),
        "builtins.eval": _Reduce(eval, (f"open({str(marker)!r}, 'w').close()",)),
        "builtins.exec": _Reduce(exec, (f"open({str(marker)!r}, 'w').close()",)),
        "subprocess.Popen": _Reduce(subprocess.Popen, (["touch", str(marker)],)),
        "subprocess.call": _Reduce(subprocess.call, (["touch", str(marker)],)),
        "builtins.open": _Reduce(open, (str(marker), "w")),
        "posix.system": None,  # placeholder: the raw opcode version below
    }


@pytest.mark.parametrize("which", ["os.system", "builtins.eval", "builtins.exec", "subprocess.Popen",
                                   "subprocess.call", "builtins.open", "raw_opcodes", "nested_in_array_dict",
                                   "getattr_gadget", "reconstructor_gadget"])
def test_malicious_pickle_is_refused_without_running_anything(tmp_path, which):
    marker = tmp_path / "pwned"
    if which == "raw_opcodes":  # hand-written protocol-0 pickle: cos\nsystem\n(S'touch ...'\ntR.
        blob = b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."
    elif which == "nested_in_array_dict":
        d = mano_like()
        d["weights"] = [_Reduce(os.system, (f"touch {marker}",))]
        blob = pickle.dumps(d, protocol=2)
    elif which == "getattr_gadget":  # builtins.getattr(os, "system") -- refused at the lookup of getattr
        blob = (b"\x80\x02cbuiltins\ngetattr\ncos\n_wrap_close\nX\x06\x00\x00\x00systemq\x00\x86R.")
    elif which == "reconstructor_gadget":  # copy_reg._reconstructor with a non-admitted class
        blob = (b"\x80\x02ccopy_reg\n_reconstructor\ncos\n_wrap_close\nc__builtin__\nobject\nN\x87R.")
    else:
        blob = pickle.dumps({"v_template": _evil_payloads(marker)[which]}, protocol=2)
    path = tmp_path / "MANO_RIGHT.pkl"
    path.write_bytes(blob)
    with pytest.raises(DataError, match=r"refusing|cannot read pickle") as exc:
        load_mano_pkl(path)
    assert "MANO_RIGHT.pkl" in str(exc.value)
    assert not marker.exists()


def test_plain_pickle_would_have_run_it(tmp_path):
    """Control: the same payload through pickle.loads does run (so the test above can fail)."""
    marker = tmp_path / "pwned"
    pickle.loads(pickle.dumps(_Reduce(os.system, (f"touch {marker}",))))
    assert marker.exists()


@pytest.mark.parametrize("blob,match", [
    (b"", "cannot read pickle"),
    (b"\x80\x02}q\x00(X\x01\x00\x00\x00", "cannot read pickle"),  # truncated
    (pickle.dumps([1, 2, 3]), "must hold a dict"),
    (pickle.dumps({"v_template": np.zeros(3)}), "lacks f, weights"),
    (pickle.dumps({"f": np.array([object()], dtype=object)}), "refusing|object dtype"),
])
def test_malformed_mano_pickles(tmp_path, blob, match):
    path = tmp_path / "MANO_LEFT.pkl"
    path.write_bytes(blob)
    with pytest.raises(DataError, match=match):
        load_mano_pkl(path)


def test_restricted_unpickler_on_arbitrary_class_is_refused():
    blob = pickle.dumps(Path("/tmp"))
    with pytest.raises(DataError, match=r"refusing to load pathlib\.\w*Path"):
        RestrictedUnpickler(io.BytesIO(blob)).load()


def test_mano_files_are_found_like_the_uv_files(tmp_path, monkeypatch):
    monkeypatch.delenv("EGOPRESSDIFF_MANO_DIR", raising=False)
    monkeypatch.setenv("EGOPRESSURE_MANO_PATH", str(tmp_path))
    with pytest.raises(MissingAssetError, match=r"MANO_RIGHT\.pkl not found.*mano\.is\.tue\.mpg\.de"):
        load_mano_model("right")
    (tmp_path / "MANO_RIGHT.pkl").write_bytes(pickle.dumps(mano_like(), protocol=2))
    assert load_mano_model("right")["v_template"].shape == (778, 3)
    monkeypatch.delenv("EGOPRESSURE_MANO_PATH")
    with pytest.raises(MissingAssetError, match="EGOPRESSDIFF_MANO_DIR"):
        load_mano_model("left")
    assert load_pickle_restricted  # public helper for other pickled assets


# ----------------------------------------------------------------------------- (c) names never escape
BAD_NAMES = ["../../x", "..", ".", "/abs/path", "a/b", "a\\b", "", "x\n", "-rf", ".hidden", "x y", "é", "x\r", "x\x00"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_check_safe_name_refuses(name):
    with pytest.raises(EgoPressDiffError, match="unsafe"):
        check_safe_name(name)


@pytest.mark.parametrize("name", ["p_001", "p_001_press_palm_high_x5_right", "p_001_pinch-zoom_5x_left", "v1.2"])
def test_check_safe_name_accepts(name):
    assert check_safe_name(name) == name


@pytest.mark.parametrize("name", ["../../x", "/tmp/abs", "a/b"])
def test_every_writer_refuses_escaping_names(tmp_path, name):
    from egopressdiff.data.writer import write_sequence
    from egopressdiff.evaluation.predictions import PredictionWriter, prediction_path, write_prediction

    maps = np.zeros((1, 224, 224), np.float32)
    for call in (lambda: prediction_path(tmp_path, name, "s"), lambda: prediction_path(tmp_path, "p", name),
                 lambda: write_prediction(tmp_path, name, "s", [1], maps),
                 lambda: write_prediction(tmp_path, "p", name, [1], maps),
                 lambda: PredictionWriter(tmp_path, "p", name, [1]),
                 lambda: write_sequence(tmp_path, name, "s", [], {}, {}),
                 lambda: write_sequence(tmp_path, "p", name, [], {}, {})):
        with pytest.raises(EgoPressDiffError, match="unsafe"):
            call()
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a folder
    assert not Path("/tmp/abs.npz").exists()


def test_render_sequence_refuses_escaping_names(tmp_path):
    from egopressdiff.evaluation.visualize import render_sequence

    with pytest.raises(EgoPressDiffError, match="unsafe sequence name"):
        render_sequence(None, None, "p_001", "../../x", tmp_path)
    with pytest.raises(EgoPressDiffError, match="unsafe participant name"):
        render_sequence(None, None, "/etc", "s", tmp_path)


def test_prediction_folder_with_crafted_names_is_refused(tmp_path, fake_root):
    """A prediction folder whose files carry unsafe names (no predict_info.json) is refused by evaluate."""
    from egopressdiff.evaluation.predictions import list_predictions

    bad = tmp_path / "pred" / "p_001" / "x y.npz"
    bad.parent.mkdir(parents=True)
    np.savez(bad, frame=np.arange(1, 3), pressure_kpa=np.zeros((2, 224, 224), np.float32))
    with pytest.raises(DataError, match=r"unsafe sequence name 'x y'.*x y\.npz"):
        list_predictions(tmp_path / "pred")
    assert main(["evaluate", "--pred", str(tmp_path / "pred"), "--data", str(fake_root), "--no-progress"]) == 2


# ----------------------------------------------------------------------------- (d) no silent overwrite
@pytest.fixture(scope="module")
def small(tmp_path_factory, make_sequence, fake_mano_dir):
    from egopressdiff.config import load_run_config
    from egopressdiff.training.registry import build_model

    base = tmp_path_factory.mktemp("overwrite")
    make_sequence(base / "data", "p_001", "p_001_press_palm_high_x5_right", 4)
    make_sequence(base / "data", "p_001", "p_001_pinch-zoom_5x_right", 4, seed=1)
    build_model(load_run_config("baseline-reg-tiny")["model"]).save_pretrained(base / "model")
    return base


def _predict(small, out, *extra):
    return main(["predict", "--checkpoint", str(small / "model"), "--data", str(small / "data"), "--output",
                 str(out), "--split", "all", "--no-progress", *extra])


def test_predict_skips_complete_sequences_and_overwrite_redoes_them(small, tmp_path, capsys):
    from egopressdiff.evaluation.predictions import list_predictions, read_prediction

    out = tmp_path / "pred"
    assert _predict(small, out) == 0
    files = {s: f for _, s, f in list_predictions(out)}
    assert len(files) == 2
    # a re-run leaves every complete file alone
    mtimes = {s: f.stat().st_mtime_ns for s, f in files.items()}
    capsys.readouterr()
    assert _predict(small, out) == 0
    assert "predicted 0 sequences" in capsys.readouterr().out
    assert {s: f.stat().st_mtime_ns for s, f in files.items()} == mtimes
    # a removed sequence is redone, the other one skipped
    gone = sorted(files)[0]
    files[gone].unlink()
    assert _predict(small, out) == 0
    printed = capsys.readouterr().out
    assert "predicted 1 sequences" in printed and "skipped 1 already complete" in printed
    assert files[gone].is_file() and files[sorted(files)[1]].stat().st_mtime_ns == mtimes[sorted(files)[1]]
    # --overwrite redoes everything
    assert _predict(small, out, "--overwrite") == 0
    assert "predicted 2 sequences" in capsys.readouterr().out
    for f in files.values():
        read_prediction(f)
    assert not [p for p in out.rglob(".*")]  # no temporaries left


def test_demo_refuses_a_non_empty_output(tmp_path, capsys):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    assert main(["demo", "--output", str(out), "--no-progress"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]


def test_render_refuses_then_overwrites(small, tmp_path, capsys):
    """render keeps an existing folder unless --overwrite (the overwrite itself is exercised by the
    render tests; here only the refusal, which must leave the folder untouched)."""
    out = tmp_path / "pics"
    out.mkdir()
    (out / "index.html").write_text("old report")
    rc = main(["render", "--pred", str(tmp_path / "nopred"), "--data", str(small / "data"), "--output", str(out)])
    assert rc == 2 and "--overwrite" in capsys.readouterr().err
    assert (out / "index.html").read_text() == "old report"
