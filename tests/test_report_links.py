"""The HTML report opens: every picture and video it references resolves from index.html's own folder.

The report is written with RELATIVE output paths from another working directory (the way
`bash run.sh demo` writes demo-output/), then each src/href is opened the way a browser
opens it: relative to the page.
"""

from __future__ import annotations

import os
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest

from egopressdiff.evaluation.render import save_png
from egopressdiff.evaluation.report import write_report

P, S = "p_001", "p_001_press_palm_high_x5_right"


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.refs += [v for k, v in attrs if k in ("src", "href", "poster") and v is not None]


def references(index: Path) -> list[str]:
    parser = _Refs()
    parser.feed(index.read_text())
    return parser.refs


def assert_every_reference_opens(index: Path, expected: int) -> None:
    """Each reference is relative, stays inside the report folder and names an existing file."""
    index = Path(index).resolve()
    refs = references(index)
    assert len(refs) == expected, refs
    folder = index.parent
    for ref in refs:
        url = urlparse(ref)
        assert not url.scheme and not url.netloc and not ref.startswith("/"), ref
        target = (folder / unquote(url.path)).resolve()
        assert target.is_file(), f"{ref} does not resolve from {folder}"
        assert folder in target.parents, f"{ref} leaves the report folder"


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """Work from a directory that is neither the output folder nor its parent."""
    cwd = tmp_path / "work" / "here"
    cwd.mkdir(parents=True)
    monkeypatch.chdir(cwd)
    return cwd


@pytest.mark.parametrize("output", ["out", "nested/out", "./x/../out"])
def test_relative_output_and_media_paths(elsewhere, output):
    # media paths as the renderers make them: the output folder joined with a file name
    img = save_png(np.zeros((4, 4, 3), np.uint8), Path(output) / "render" / "m one" / P / f"{S}_hand.png")
    vid = save_png(np.zeros((4, 4, 3), np.uint8), Path(output) / "render" / "m one" / P / f"{S}.mp4")
    index = write_report(output, "t", {}, items=[{"sequence": f"{P}/{S}", "hand_image": str(img), "video": vid}])
    text = index.read_text()
    assert 'src="render/m%20one/p_001/' in text  # relative to the page, quoted
    assert output.split("/")[-1] + "/render" not in text  # the bug: the output folder repeated
    # img: <a href><img src> + files link; video: <video src> + files link
    assert_every_reference_opens(index, expected=5)
    # the folder can be moved: links do not depend on where it was written from
    moved = elsewhere.parent / "moved"
    os.replace(Path(output), moved)
    assert_every_reference_opens(moved / "index.html", expected=5)


def test_absolute_output_with_cwd_relative_media(elsewhere, tmp_path):
    out = tmp_path / "abs_out"
    img = save_png(np.zeros((4, 4, 3), np.uint8), out / "pics" / "a.png")
    rel_img = os.path.relpath(img, elsewhere)  # '../../abs_out/pics/a.png'
    index = write_report(out, "t", {}, items=[{"sequence": "s", "image": rel_img}])
    assert 'src="pics/a.png"' in index.read_text()
    assert_every_reference_opens(index, expected=3)


def test_render_folder_from_another_directory(elsewhere, tmp_path, make_sequence, fake_mano_dir):
    """`egopressdiff render`'s body with relative --pred, --data and --output, run from elsewhere."""
    from egopressdiff.data.reader import EgoPressureReader
    from egopressdiff.evaluation.predictions import write_prediction
    from egopressdiff.evaluation.visualize import render_folder

    data = tmp_path / "work" / "data"
    make_sequence(data, P, S, 6)
    frames = EgoPressureReader(data).predictable_frames(P, S)
    write_prediction(tmp_path / "work" / "pred", P, S, frames, np.ones((len(frames), 224, 224), np.float32))
    index = render_folder("../pred", "../data", "pics", progress=False)
    assert not index.is_absolute() and index.resolve() == (elsewhere / "pics" / "index.html")
    # video (src, its poster, files link) and 3D-hand picture (href, src, files link)
    assert_every_reference_opens(index, expected=6)
    # the poster is one composed video frame (RGB crop | predicted | ground truth | error), at the 3D hand's frame
    poster = next(r for r in references(index) if r.endswith("_poster.png"))
    from PIL import Image

    img = np.asarray(Image.open(index.parent / unquote(poster)))
    assert img.ndim == 3 and img.shape[1] > 3 * img.shape[0] and img.std() > 0


@pytest.mark.slow
def test_demo_report_opens_from_a_relative_output(elsewhere):
    """The quick start: `egopressdiff demo --output demo-output`, relative, from the working directory."""
    from egopressdiff.cli.main import main

    assert main(["demo", "--output", "demo-output", "--sequences", "2", "--frames", "12", "--steps", "1",
                 "--no-progress"]) == 0
    index = elsewhere / "demo-output" / "index.html"
    # 5 rows (the 4 shipped methods on the annotated mesh, EgoPressDiff on the estimated mesh) x 2 rendered
    # sequences, each a video (3 references: src, poster, files link) and a 3D-hand picture (3)
    assert_every_reference_opens(index, expected=5 * 2 * 6)
