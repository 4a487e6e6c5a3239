"""Export: MP4/GIF round trips through real encoders, reports, maps, side-by-side frames."""

from __future__ import annotations

import json
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
    to_uint8,
    upscale,
    write_gif,
    write_mp4,
    write_report,
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
        write_report({"a": 1}, blocker / "r.json")
    with pytest.raises(StarVidError, match="folder, not a file"):
        save_maps({"a": np.zeros(2)}, tmp_path)


def test_to_uint8_ranges_and_layouts():
    x = np.stack([np.full((3, 4, 5), -1.0), np.full((3, 4, 5), 1.0)])  # (F,3,H,W)
    out = to_uint8(x)
    assert out.shape == (2, 4, 5, 3) and out.dtype == np.uint8
    assert out[0].max() == 0 and out[1].min() == 255
    assert to_uint8(np.full((1, 2, 2, 3), 0.5), value_range=(0, 1))[0, 0, 0, 0] == 128


def test_side_by_side():
    a, b = _blocks(4, 16, 16), _blocks(4, 16, 24)
    out = side_by_side(a, b, separator=2)
    assert out.shape == (4, 16, 16 + 2 + 24, 3)
    np.testing.assert_array_equal(out[:, :, :16], a)
    np.testing.assert_array_equal(out[:, :, 18:], b)
    assert (out[:, :, 16:18] == 255).all()
    with pytest.raises(StarVidError, match="same frame count and height"):
        side_by_side(a, _blocks(3, 16, 16))


def test_report_is_utf8_json_with_plain_types(tmp_path):
    report = {
        "prompt": "un café près d'un chien",
        "seed": np.int64(3),
        "losses": [{"step": 0, "total": np.float32(1.5), "syntax": float("nan")}],
        "share": np.array([0.25, 0.5]),
        "path": tmp_path,
    }
    path = write_report(report, tmp_path / "runs" / "report.json")
    text = path.read_text(encoding="utf-8")
    assert "café" in text and '\n  "seed": 3' in text  # indent 2, not ASCII-escaped
    data = json.loads(text)
    assert data["losses"][0] == {"step": 0, "total": 1.5, "syntax": None}
    assert data["share"] == [0.25, 0.5] and data["path"] == str(tmp_path)
    with pytest.raises(StarVidError, match="cannot write a object"):
        write_report({"x": object()}, tmp_path / "bad.json")


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
