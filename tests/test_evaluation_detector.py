"""The detectors end to end on tiny random-weight models built from configs (no download).

Random weights find nothing meaningful: these tests check the plumbing (loading through
``from_pretrained``, boxes as fractions of the frame, labels, thresholds, the frames a protocol
reads), while the rules are tested by value in test_evaluation_rules.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_detectors import grounding_folder, owl_folder

from starvid.errors import StarVidError
from starvid.evaluation.detector import load_detector, score_video
from starvid.evaluation.facts import Facts, ObjectFact, SuiteItem
from starvid.evaluation.suites import make_suite

PHRASES = ["dog", "red car"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("detectors")
    return {
        "owlvit": owl_folder(tmp, v2=False),
        "owlv2": owl_folder(tmp, v2=True),
        "grounding-dino": grounding_folder(tmp),
    }


@pytest.fixture(scope="module")
def video():
    return np.random.default_rng(0).integers(0, 256, size=(8, 24, 40, 3), dtype=np.uint8)


@pytest.mark.parametrize("kind", ["owlvit", "owlv2", "grounding-dino"])
def test_detector_plumbing_and_threshold(folders, video, kind):
    detector = load_detector(str(folders[kind]))
    assert detector.kind == kind and detector.name == str(folders[kind])
    everything = detector.detect(video[:3], PHRASES, min_score=0.0, text_threshold=0.0)
    assert len(everything) == 3
    flat = [d for frame in everything for d in frame]
    assert flat and {d.label for d in flat} <= set(PHRASES)
    for d in flat:
        x0, y0, x1, y1 = d.box
        assert 0.0 <= x0 < x1 <= 1.0 and 0.0 <= y0 < y1 <= 1.0 and 0.0 <= d.score <= 1.0
    cut = float(np.median([d.score for d in flat]))
    strict = detector.detect(video[:3], PHRASES, min_score=cut, text_threshold=0.0)
    assert [[d for d in frame if d.score > cut] for frame in everything] == strict
    assert 0 < sum(map(len, strict)) < len(flat)


def _raw_boxes(detector, frames, queries):
    """The model's own boxes (centre form, relative to what it saw) and best query scores."""
    inputs = detector.processor(
        text=[queries] * len(frames), images=list(frames), return_tensors="pt"
    )
    with torch.no_grad():
        out = detector.model(**inputs)
    scores = torch.sigmoid(out.logits.max(-1).values)
    return out.pred_boxes, scores


@pytest.mark.parametrize("kind", ["owlvit", "owlv2"])
def test_owl_boxes_are_fractions_of_the_frame(folders, video, kind):
    """OWL-ViT stretches the frame to a square, OWLv2 pads it: boxes must come back in
    fractions of the unpadded 40x24 frame either way."""
    detector = load_detector(str(folders[kind]))
    frames = video[:2]
    centres, scores = _raw_boxes(detector, frames, [f"a photo of a {p}" for p in ["dog", "cat"]])
    found = detector.detect(frames, ["dog", "cat"], min_score=0.0)
    cx, cy, w, h = centres.unbind(-1)
    corners = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1).numpy()
    if kind == "owlv2":  # the padded square is 40 pixels: y fractions of it grow by 40 / 24
        corners[..., [1, 3]] *= 40 / 24
    expected = np.clip(corners, 0.0, 1.0)
    for f, frame in enumerate(found):
        for d in frame:
            same_box = np.abs(expected[f] - np.array(d.box)).max(axis=1) < 1e-5
            same_score = np.abs(scores[f].numpy() - d.score) < 1e-6
            assert (same_box & same_score).any(), (kind, d)


def test_grounding_dino_keeps_boxes_whose_words_pass_the_text_threshold(folders, video):
    detector = load_detector(str(folders["grounding-dino"]))
    loose = detector.detect(video[:2], PHRASES, min_score=0.0, text_threshold=0.0)
    assert {d.label for frame in loose for d in frame} == set(PHRASES)
    assert all(len(frame) == 2 * 12 for frame in loose)  # every query box of both captions
    strict = detector.detect(video[:2], PHRASES, min_score=0.0, text_threshold=1.0)
    assert strict == [[], []]


@pytest.mark.parametrize("kind", ["owlvit", "grounding-dino"])
def test_score_video_reads_the_protocols_frames(folders, video, kind):
    detector = load_detector(str(folders[kind]))
    numeracy = make_suite("lvd-numeracy", 1, seed=0)[0]
    res = score_video(video, numeracy, detector)
    assert res.frames == [0, 1, 3, 4, 6, 7] and res.protocol == "lvd"
    assert res.detector == str(folders[kind]) and res.item_id == numeracy.id
    counts = res.categories["numeracy"].details["objects"][numeracy.facts.objects[0].phrase()]
    assert len(counts["counts"]) == 6 and counts["asked"] == numeracy.facts.objects[0].count
    spatial = make_suite("compbench-spatial", 1, seed=0)[0]
    res = score_video(video, spatial, detector)
    assert res.frames == list(range(8)) and res.protocol == "t2v-compbench"
    frame_scores = res.categories["spatial_relationships"].details["frame_scores"][0]
    assert len(frame_scores) == 8
    assert all(s in (0.0, 0.2, 0.4) or 0.4 < s <= 1.0 for s in frame_scores)
    assert 0.0 <= res.values()["spatial_relationships"] <= 1.0


def test_detector_errors_are_one_line(folders, video, tmp_path):
    with pytest.raises(StarVidError, match="unknown detector 'owl'"):
        load_detector("owl")
    with pytest.raises(StarVidError) as err:
        load_detector("google/owlvit-base-patch32")
    assert "google/owlvit-base-patch32" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(StarVidError, match="cannot load detector"):
        load_detector(str(tmp_path))  # an empty folder
    detector = load_detector(str(folders["owlvit"]))
    shapes = SuiteItem(
        id="s", suite="shapes", task="shapes", prompt="a red circle moving left",
        facts=Facts(objects=[ObjectFact(noun="circle", color="red", motion="left")]),
    )  # fmt: skip
    with pytest.raises(StarVidError, match="scored exactly"):
        score_video(video, shapes, detector)
    with pytest.raises(StarVidError, match="uint8"):
        score_video(video.astype(np.float32), make_suite("lvd-numeracy", 1)[0], detector)
    with pytest.raises(StarVidError, match="frames, height, width, 3"):
        detector.detect(video[0], ["dog"], min_score=0.1)
