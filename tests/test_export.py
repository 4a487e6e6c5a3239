"""Export: MP4/GIF round trips through real encoders, reports, maps, side-by-side frames."""

from __future__ import annotations

import math
import subprocess

import imageio_ffmpeg
import numpy as np
import pytest

from starvid.errors import StarVidError
from starvid.export import (
    load_maps,
    read_video,
    save_maps,
    side_by_side,
    upscale,
    write_gif,
    write_mp4,
    write_text,
)


def _blocks(frames: int = 8, h: int = 64, w: int = 64) -> np.ndarray:
    """Frames of flat colour quadrants with a square moving right: easy for H.264."""
    out = np.zeros((frames, h, w, 3), dtype=np.uint8)
    out[:, : h // 2, : w // 2] = (200, 40, 40)
    out[:, : h // 2, w // 2 :] = (40, 200, 40)
    out[:, h // 2 :, : w // 2] = (40, 40, 200)
    out[:, h // 2 :, w // 2 :] = (220, 220, 60)
    side = max(2, h // 8)
    for f in range(frames):
        x = (f * 4) % (w - side)
        out[f, 2 : 2 + side, x : x + side] = 255
    return out


def test_mp4_round_trip_upscaled(tmp_path):
    frames = _blocks()
    path = write_mp4(frames, tmp_path / "sub" / "video.mp4", fps=8, min_size=256)
    assert path.is_file() and path.stat().st_size > 0
    back = read_video(path)
    assert back.shape == (8, 256, 256, 3)  # 64 px upscaled by the integer factor 4
    expected = upscale(frames, 256)
    err = np.abs(back.astype(np.int16) - expected.astype(np.int16)).mean()
    assert err < 8, err  # lossy, but the picture is the same
    # Browsers play H.264 in yuv420p: check the stream ffmpeg itself reports.
    probe = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)],
        capture_output=True,
        text=True,
    ).stderr
    assert "h264" in probe and "yuv420p" in probe


def test_mp4_odd_size_is_padded_even(tmp_path):
    frames = _blocks(frames=5, h=33, w=47)
    back = read_video(write_mp4(frames, tmp_path / "odd.mp4", fps=4, min_size=0))
    assert back.shape == (5, 34, 48, 3)


def test_mp4_frame_rate(tmp_path):
    path = write_mp4(_blocks(frames=12), tmp_path / "fps.mp4", fps=6, min_size=64)
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    reader.close()
    assert math.isclose(meta["fps"], 6.0, rel_tol=0.01)


def test_upscale_uses_smallest_integer_factor():
    frames = _blocks(frames=1, h=100, w=150)
    assert upscale(frames, 256).shape == (1, 300, 450, 3)
    assert upscale(frames, 64).shape == frames.shape
    up = upscale(_blocks(frames=1, h=8, w=8), 16)
    np.testing.assert_array_equal(up[0, ::2, ::2], _blocks(frames=1, h=8, w=8)[0])


def test_gif_round_trip(tmp_path):
    frames = _blocks(frames=6, h=32, w=32)
    back = read_video(write_gif(frames, tmp_path / "a.gif", fps=10, min_size=64))
    assert back.shape == (6, 64, 64, 3)
    # GIF is palette-based: flat colours survive almost exactly.
    assert np.abs(back.astype(int) - upscale(frames, 64).astype(int)).mean() < 4


def test_frames_are_validated(tmp_path):
    with pytest.raises(StarVidError, match="uint8"):
        write_mp4(np.zeros((2, 8, 8, 3), dtype=np.float32), tmp_path / "x.mp4")
    with pytest.raises(StarVidError, match="frames, height, width, 3"):
        write_mp4(np.zeros((8, 8, 3), dtype=np.uint8), tmp_path / "x.mp4")
    with pytest.raises(StarVidError, match="fps"):
        write_mp4(_blocks(2), tmp_path / "x.mp4", fps=0)


def test_unwritable_path_is_a_starvid_error(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(StarVidError, match="cannot create folder"):
        write_mp4(_blocks(2), blocker / "v.mp4")
    with pytest.raises(StarVidError, match="cannot create folder"):
        write_text("{}", blocker / "r.json")
    with pytest.raises(StarVidError, match="folder, not a file"):
        save_maps({"a": np.zeros(2)}, tmp_path)


def test_side_by_side():
    a, b = _blocks(4, 16, 16), _blocks(4, 16, 24)
    out = side_by_side(a, b, separator=2)
    assert out.shape == (4, 16, 16 + 2 + 24, 3)
    np.testing.assert_array_equal(out[:, :, :16], a)
    np.testing.assert_array_equal(out[:, :, 18:], b)
    assert (out[:, :, 16:18] == 255).all()
    with pytest.raises(StarVidError, match="same frame count and height"):
        side_by_side(a, _blocks(3, 16, 16))


def test_text_is_written_whole_or_not_at_all(tmp_path):
    path = write_text("un café près d'un chien\n", tmp_path / "runs" / "report.json")
    assert path.read_text(encoding="utf-8") == "un café près d'un chien\n"
    with pytest.raises(StarVidError, match="cannot write"):
        write_text("half \ud800 written", path)  # fails while writing (not UTF-8 encodable)
    assert path.read_text(encoding="utf-8") == "un café près d'un chien\n"  # the old file stays
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["report.json"]  # no temp left


_LIMITED = """
import resource, sys
import numpy as np
from starvid.errors import StarVidError
from starvid.export import write_mp4, write_text
resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))
rng = np.random.default_rng(0)
frames = rng.integers(0, 256, (8, 64, 64, 3), dtype=np.uint8)  # noise: many KB of H.264
for write, arg, name in ((write_mp4, frames, "out.mp4"), (write_text, "x" * 20000, "r.json")):
    try:
        write(arg, sys.argv[1] + "/" + name)
    except StarVidError as exc:
        print("refused:", exc)
    else:
        print("wrote", name)
"""


def test_a_file_size_limit_fails_loudly_and_leaves_no_truncated_file(tmp_path):
    """``ulimit -f 8``: the encoder's output is cut short; the write must say so, and the
    target path must not hold a truncated, unreadable video."""
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _LIMITED, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(__import__("pathlib").Path(__file__).resolve().parents[1]),
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2 and all(line.startswith("refused: cannot write") for line in lines)
    assert list(tmp_path.iterdir()) == []


def test_maps_round_trip_float16(tmp_path):
    rng = np.random.default_rng(0)
    maps = {"cat-1": rng.random((8, 16, 16)), "walk": rng.random((8, 8, 8)).astype(np.float32)}
    path = save_maps(maps, tmp_path / "maps" / "ca.npz")
    back = load_maps(path)
    assert set(back) == {"cat-1", "walk"}
    for k, v in maps.items():
        assert back[k].dtype == np.float16 and back[k].shape == v.shape
        np.testing.assert_allclose(back[k], v, atol=1e-3)


def test_load_maps_refuses_pickles_and_junk(tmp_path):
    pickled = tmp_path / "obj.npz"
    np.savez(pickled, a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(StarVidError, match="not a maps file"):
        load_maps(pickled)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"hello")
    with pytest.raises(StarVidError, match="not a maps file"):
        load_maps(junk)
    with pytest.raises(StarVidError, match="not found"):
        load_maps(tmp_path / "missing.npz")
