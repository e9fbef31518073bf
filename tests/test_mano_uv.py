"""MANO UV .obj parsing and the user's MANO folder lookup."""

from __future__ import annotations

import numpy as np
import pytest

from egopressdiff.data import mano_uv
from egopressdiff.errors import DataError, MissingAssetError

SMALL_OBJ = """# two quads sharing an edge, with a UV seam
v 0 0 0
v 1 0 0
v 1 1 0
v 0 1 0
v 2 0 0
v 2 1 0
vt 0.0 0.0
vt 0.5 0.0
vt 0.5 1.0
vt 0.0 1.0
vt 0.6 0.0
vt 1.0 0.0
vt 1.0 1.0
vt 0.6 1.0
vn 0 0 1
f 1/1/1 2/2/1 3/3/1 4/4/1
f 2/5 5/6 6/7 -4/-1
"""


def test_parse_small_obj(tmp_path):
    p = tmp_path / "small.obj"
    p.write_text(SMALL_OBJ)
    atlas = mano_uv.parse_uv_obj(p, num_vertices=None)
    assert atlas.num_vertices == 6
    # quads are fanned into two triangles each; the negative index -4 is vertex 3 (0-based 2) / uv 8
    np.testing.assert_array_equal(atlas.faces, [[0, 1, 2], [0, 2, 3], [1, 4, 5], [1, 5, 2]])
    np.testing.assert_array_equal(atlas.uv_faces, [[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]])
    mask = atlas.mask(32)
    assert 0.75 < mask.mean() < 0.95  # the UV gap between 0.5 and 0.6 is not covered
    assert mask[:, 17].sum() == 0


@pytest.mark.parametrize("line,lineno,why", [
    ("v 1 2", 2, "3 coordinates"),
    ("vt 0.5 abc", 2, "could not convert"),
    ("f 1 2 3", 2, "no UV index"),
    ("f 1/1 2/0 3/1", 2, "start at 1"),
])
def test_malformed_obj_names_file_and_line(tmp_path, line, lineno, why):
    p = tmp_path / "bad.obj"
    p.write_text(f"v 0 0 0\n{line}\nv 1 0 0\nv 0 1 0\nvt 0 0\nf 1/1 2/1 3/1\n")
    with pytest.raises(DataError, match=rf"line {lineno}.*{why}.*bad.obj"):
        mano_uv.parse_uv_obj(p, num_vertices=None)


def test_out_of_range_and_wrong_vertex_count(tmp_path):
    p = tmp_path / "oor.obj"
    p.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nf 1/1 2/1 9/1\n")
    with pytest.raises(DataError, match="index out of range"):
        mano_uv.parse_uv_obj(p, num_vertices=None)
    p.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nf 1/1 2/1 3/1\n")
    with pytest.raises(DataError, match="3 vertices, expected 778"):
        mano_uv.parse_uv_obj(p)


def test_missing_mano_folder_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.delenv("EGOPRESSDIFF_MANO_DIR", raising=False)
    monkeypatch.delenv("EGOPRESSURE_MANO_PATH", raising=False)
    with pytest.raises(MissingAssetError) as e:
        mano_uv.load_mano_atlas("right")
    msg = str(e.value)
    assert "mano.is.tue.mpg.de" in msg and "MANO_UV_right.obj" in msg and "EGOPRESSDIFF_MANO_DIR" in msg
    # the toolkit's variable is the fallback; a folder without the file names the missing path
    monkeypatch.setenv("EGOPRESSURE_MANO_PATH", str(tmp_path))
    with pytest.raises(MissingAssetError, match=r"MANO_UV_left.obj not found"):
        mano_uv.load_mano_atlas("left")
    monkeypatch.setenv("EGOPRESSDIFF_MANO_DIR", str(tmp_path / "nope"))
    with pytest.raises(MissingAssetError, match="not a directory"):
        mano_uv.mano_dir()


def test_load_from_env_folder(monkeypatch, tmp_path):
    from conftest import grid_atlas_obj

    (tmp_path / "MANO_UV_right.obj").write_text(grid_atlas_obj())
    monkeypatch.delenv("EGOPRESSDIFF_MANO_DIR", raising=False)
    monkeypatch.setenv("EGOPRESSURE_MANO_PATH", str(tmp_path))
    atlas = mano_uv.load_mano_atlas("right")
    assert atlas.num_vertices == 778 and atlas.name == "mano_right"
    assert atlas.mask(64).sum() > 0.5 * 64 * 64


def test_reader_uses_mano_atlas_for_real_data(fake_root):
    from egopressdiff.data.reader import EgoPressureReader

    r = EgoPressureReader(fake_root)
    assert not r.is_synthetic("p_002", "p_002_pinch-zoom_5x_right")
    assert r.atlas("p_002", "p_002_pinch-zoom_5x_right").name == "mano_right"
