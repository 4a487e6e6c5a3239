"""Open-vocabulary detectors from transformers, run on video frames for the suite scorer.

``load_detector(ID)`` loads OWL-ViT (default, as LVD uses), OWLv2 or Grounding DINO with
``AutoModelForZeroShotObjectDetection`` and ``AutoProcessor`` from the hub (safetensors weights
only) or a local folder; offline without the weights it raises a one-line StarVidError naming
the ID. ``Detector.detect`` returns each frame's boxes as ``rules.Detection`` (fractions of the
frame, labelled by the phrase asked for). ``score_video`` reads the frames a task's protocol
reads, detects the item's phrases and applies ``scoring.score_detections``.

OWL models get one query per phrase ("a photo of a red car") and label each box with its best
query. Grounding DINO gets one caption per phrase ("red car.", one forward pass each, as
T2V-CompBench runs it), and a box counts for the phrase when every word of it passes the text
threshold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from starvid.errors import StarVidError
from starvid.evaluation.facts import SuiteItem, article
from starvid.evaluation.rules import Detection, Frames, frames_to_read
from starvid.evaluation.scoring import DetectorScore, protocol_for, score_detections

DETECTORS = {
    "owlvit": "google/owlvit-base-patch32",
    "owlv2": "google/owlv2-base-patch16-ensemble",
    "grounding-dino": "IDEA-Research/grounding-dino-tiny",
}
DEFAULT_DETECTOR = "owlvit"
KINDS = ("owlvit", "owlv2", "grounding-dino")  # transformers' model_type of each family


@dataclass
class Detector:
    """A loaded detector: its name (as asked), family, model and processor."""

    name: str
    kind: str
    model: torch.nn.Module
    processor: object
    device: torch.device

    def detect(
        self, frames: np.ndarray, phrases: list[str], min_score: float, text_threshold: float = 0.25
    ) -> Frames:
        """Boxes of `phrases` in uint8 ``(F, H, W, 3)`` RGB `frames` scoring above `min_score`.

        `text_threshold` applies to Grounding DINO only. Boxes are clipped to the frame; empty
        ones are dropped.
        """
        _check_video(frames)
        if not phrases:
            raise StarVidError("the detector needs at least one phrase to look for")
        if self.kind == "grounding-dino":
            found = [[] for _ in frames]
            for phrase in phrases:
                for f, dets in enumerate(
                    self._grounding(frames, phrase, min_score, text_threshold)
                ):
                    found[f] += dets
            return found
        return self._owl(frames, phrases, min_score)

    @torch.inference_mode()
    def _owl(self, frames: np.ndarray, phrases: list[str], min_score: float) -> Frames:
        queries = [f"a photo of {article(p)} {p}" for p in phrases]
        inputs = self.processor(
            text=[queries] * len(frames), images=_images(frames), return_tensors="pt"
        ).to(self.device)
        outputs = self.model(**inputs)
        size = [tuple(frames.shape[1:3])] * len(frames)
        results = self.processor.post_process_grounded_object_detection(
            outputs, threshold=min_score, target_sizes=size
        )
        return [
            _detections(
                r["boxes"], r["scores"], [phrases[int(i)] for i in r["labels"]], frames.shape
            )
            for r in results
        ]

    @torch.inference_mode()
    def _grounding(
        self, frames: np.ndarray, phrase: str, min_score: float, text_threshold: float
    ) -> Frames:
        caption = phrase.lower().strip() + "."
        inputs = self.processor(
            images=_images(frames), text=[caption] * len(frames), return_tensors="pt"
        ).to(self.device)
        outputs = self.model(**inputs)
        results = self.processor.post_process_grounded_object_detection(
            outputs,
            inputs["input_ids"],
            threshold=min_score,
            text_threshold=text_threshold,
            target_sizes=[tuple(frames.shape[1:3])] * len(frames),
        )
        out = []
        for r in results:
            # The words above the text threshold must be exactly the phrase (T2V-CompBench).
            keep = [_words(label) == _words(phrase) for label in r["text_labels"]]
            boxes, scores = r["boxes"][keep], r["scores"][keep]
            out.append(_detections(boxes, scores, [phrase] * int(sum(keep)), frames.shape))
        return out


def _images(frames: np.ndarray) -> list[Image.Image]:
    return [Image.fromarray(f) for f in frames]


def _words(text: str) -> list[str]:
    """Lower-case words of a label, without special tokens and punctuation."""
    return re.findall(r"[a-z0-9]+", re.sub(r"\[[A-Z]+\]", " ", text).lower())


def _detections(boxes, scores, labels: list[str], shape: tuple[int, ...]) -> list[Detection]:
    """Pixel boxes to Detections in fractions of the frame, clipped; empty boxes dropped."""
    height, width = shape[1:3]
    scale = np.array([width, height, width, height], dtype=np.float64)
    out = []
    for box, score, label in zip(boxes.tolist(), scores.tolist(), labels, strict=True):
        x0, y0, x1, y1 = np.clip(np.array(box) / scale, 0.0, 1.0).tolist()
        if x1 > x0 and y1 > y0:
            out.append(Detection(label, float(score), (x0, y0, x1, y1)))
    return out


def _check_video(video: np.ndarray) -> None:
    if not isinstance(video, np.ndarray) or video.ndim != 4 or video.shape[-1] != 3:
        shape = getattr(video, "shape", None)
        raise StarVidError(f"a video must be a uint8 (frames, height, width, 3) array, got {shape}")
    if video.dtype != np.uint8 or len(video) == 0:
        raise StarVidError(
            f"a video must be uint8 with at least one frame, got {video.dtype} {video.shape}"
        )


def resolve_detector(name: str) -> str:
    """A short name (owlvit, owlv2, grounding-dino) to its hub id; ids and folders as given."""
    return DETECTORS.get(name, name)


def load_detector(name: str = DEFAULT_DETECTOR, device: str = "cpu") -> Detector:
    """Load a detector by short name, hub id (``owner/name[@revision]``) or local folder."""
    from huggingface_hub import is_offline_mode
    from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

    target = resolve_detector(name)
    repo, _, revision = target.partition("@")
    if not Path(repo).is_dir() and repo.count("/") != 1:
        raise StarVidError(
            f"unknown detector {name!r}: use one of {', '.join(DETECTORS)}, a hub id or a folder"
        )
    kwargs = {"revision": revision} if revision else {}
    try:
        processor = AutoProcessor.from_pretrained(repo, **kwargs)
        model = AutoModelForZeroShotObjectDetection.from_pretrained(
            repo, use_safetensors=True, **kwargs
        )
    except (OSError, ValueError) as exc:
        if not Path(repo).is_dir() and is_offline_mode():
            raise StarVidError(
                f"detector {target} is not in the local Hugging Face cache and the hub is offline "
                "(HF_HUB_OFFLINE): load it once online, or pass a local folder"
            ) from exc
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StarVidError(f"cannot load detector {target}: {first}") from exc
    kind = model.config.model_type
    if kind not in KINDS:
        raise StarVidError(f"{target} is a {kind!r} model; detectors are {', '.join(KINDS)}")
    dev = torch.device(device)
    return Detector(
        name=target, kind=kind, model=model.to(dev).eval(), processor=processor, device=dev
    )


def score_video(video: np.ndarray, item: SuiteItem, detector: Detector) -> DetectorScore:
    """Score one uint8 ``(F, H, W, 3)`` RGB video of `item` with `detector` (its task's protocol:
    frames read, thresholds, rules)."""
    _check_video(video)
    protocol = protocol_for(item.task)
    read = frames_to_read(len(video), protocol.frames, protocol.rounding)
    phrases = [obj.phrase() for obj in item.facts.objects]
    found = detector.detect(video[read], phrases, protocol.score_threshold, protocol.text_threshold)
    return score_detections(item, found, read, detector=detector.name)
