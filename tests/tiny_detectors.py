"""Tiny random-weight open-vocabulary detectors built from configs and saved to folders, as
``load_detector`` loads them (no download): OWL-ViT, OWLv2 and Grounding DINO."""

from __future__ import annotations

import torch
from transformers import (
    BertConfig,
    BertTokenizer,
    GroundingDinoConfig,
    GroundingDinoForObjectDetection,
    GroundingDinoProcessor,
    Owlv2Config,
    Owlv2ForObjectDetection,
    Owlv2Processor,
    OwlViTConfig,
    OwlViTForObjectDetection,
    OwlViTProcessor,
    SwinConfig,
)
from transformers.models.grounding_dino import GroundingDinoImageProcessorPil
from transformers.models.owlv2 import Owlv2ImageProcessorPil
from transformers.models.owlvit import OwlViTImageProcessorPil

from starvid.shapes.model import write_tokenizer

WORDS = ("a", "an", "photo", "of", "dog", "red", "car", "cat")


def owl_folder(tmp, v2: bool):
    """A tiny OWL-ViT (or OWLv2) with its processor, saved in ``tmp``; returns the folder."""
    tok = write_tokenizer(tmp / "tokenizer", WORDS)
    small = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=1, num_attention_heads=2)
    text = dict(
        vocab_size=len(tok), max_position_embeddings=77, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, **small,
    )  # fmt: skip
    vision = dict(image_size=32, patch_size=8, **small)
    size = {"height": 32, "width": 32}
    torch.manual_seed(0)
    if v2:
        model = Owlv2ForObjectDetection(
            Owlv2Config(text_config=text, vision_config=vision, projection_dim=32)
        )
        processor = Owlv2Processor(image_processor=Owlv2ImageProcessorPil(size=size), tokenizer=tok)
    else:
        model = OwlViTForObjectDetection(
            OwlViTConfig(text_config=text, vision_config=vision, projection_dim=32)
        )
        image_processor = OwlViTImageProcessorPil(size=size, crop_size=size)
        processor = OwlViTProcessor(image_processor=image_processor, tokenizer=tok)
    folder = tmp / ("owlv2" if v2 else "owlvit")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def grounding_folder(tmp):
    """A tiny Grounding DINO with its processor, saved in ``tmp``; returns the folder."""
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", *WORDS]
    tok = BertTokenizer(vocab={w: i for i, w in enumerate(vocab)})
    backbone = SwinConfig(
        image_size=64, patch_size=4, embed_dim=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1],
        window_size=2, out_indices=[2, 3, 4],
    )  # fmt: skip
    text = BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=64,
    )  # fmt: skip
    config = GroundingDinoConfig(
        backbone_config=backbone, text_config=text, d_model=32, encoder_layers=1,
        decoder_layers=2, encoder_ffn_dim=32, decoder_ffn_dim=32, encoder_attention_heads=2,
        decoder_attention_heads=2, num_queries=12, num_feature_levels=3, max_text_len=32,
        encoder_n_points=2, decoder_n_points=2,
    )  # fmt: skip
    torch.manual_seed(0)
    model = GroundingDinoForObjectDetection(config)
    image_processor = GroundingDinoImageProcessorPil(size={"shortest_edge": 48, "longest_edge": 80})
    folder = tmp / "grounding-dino"
    model.save_pretrained(folder)
    GroundingDinoProcessor(image_processor=image_processor, tokenizer=tok).save_pretrained(folder)
    return folder
