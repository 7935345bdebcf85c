"""A tiny, randomly initialised MedASR (``lasr_ctc``: a Conformer encoder with a CTC head) built
locally, with a small tokenizer and feature extractor.

It has MedASR's architecture, feature extractor and tokenizer classes, so tests and demos run the
production path (``pipeline("automatic-speech-recognition")``, 16 kHz mono) without downloading
weights. Its text is meaningless; the CTC blank is made unlikely so that any audio gives some.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

TINY_ASR_ID = "tiny"
MARKER_FILE = "medportal-tiny-asr.json"
_BUILD_VERSION = 1

_WORDS = [
    "the",
    "lungs",
    "are",
    "clear",
    "no",
    "effusion",
    "heart",
    "size",
    "normal",
    "nodule",
    "right",
    "left",
    "lobe",
]


def build_tiny_asr_model(path: Path) -> Path:
    """Write a tiny ``lasr_ctc`` model (weights, tokenizer, feature extractor) to ``path`` once."""
    import torch
    from transformers import LasrFeatureExtractor, LasrForCTC, LasrProcessor, LasrTokenizer
    from transformers.models.lasr.configuration_lasr import LasrCTCConfig

    path = Path(path)
    marker = path / MARKER_FILE
    if marker.exists() and json.loads(marker.read_text()).get("version") == _BUILD_VERSION:
        return path
    path.mkdir(parents=True, exist_ok=True)
    # MedASR's layout: <pad> (the CTC blank) = 0, </s> = 1, <unk> = 2, then the pieces.
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    vocab += [(letter, -3.0) for letter in string.ascii_lowercase]
    vocab += [(f"▁{word}", -1.0) for word in _WORDS]
    tokenizer = LasrTokenizer(vocab=vocab, extra_ids=0)
    processor = LasrProcessor(feature_extractor=LasrFeatureExtractor(feature_size=32), tokenizer=tokenizer)
    config = LasrCTCConfig(
        vocab_size=len(tokenizer),
        pad_token_id=0,
        encoder_config={
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "intermediate_size": 64,
            "conv_kernel_size": 8,
            "subsampling_conv_channels": 16,
            "num_mel_bins": 32,
        },
    )
    torch.manual_seed(0)
    model = LasrForCTC(config).eval()
    with torch.no_grad():
        model.ctc_head.bias[0] = -1e4  # never the blank: every frame says something
    model.save_pretrained(path)
    processor.save_pretrained(path)
    marker.write_text(json.dumps({"version": _BUILD_VERSION}))
    return path
