"""A tiny, randomly initialised Gemma 3 vision-language model built locally.

It has MedGemma's architecture and special tokens, so tests and demos run the
production code path (processor, chat template, generate, streamer) without
downloading weights. Its text is meaningless.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

TINY_MODEL_ID = "tiny"
MARKER_FILE = "medportal-tiny.json"
_BUILD_VERSION = 1

_SPECIAL_TOKENS = [
    "<pad>",
    "<eos>",
    "<bos>",
    "<unk>",
    "<mask>",
    "<start_of_turn>",
    "<end_of_turn>",
    "<start_of_image>",
    "<end_of_image>",
    "<image_soft_token>",
]

# A Gemma 3 chat template: system text is folded into the first user turn, as
# Gemma 3 does; images become the processor's image placeholder.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}{%- set first_user_prefix = '' -%}{%- set loop_messages = messages -%}{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') }}"
    "{%- if message['content'] is string -%}{{ message['content'] | trim }}"
    "{%- else -%}{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'image' -%}{{ '<start_of_image>' }}"
    "{%- elif item['type'] == 'text' -%}{{ item['text'] | trim }}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{ '<end_of_turn>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
)

_CORPUS = [
    "The lungs are clear. No pleural effusion or pneumothorax.",
    "Heart size is normal. The mediastinum is unremarkable.",
    "FINDINGS: No acute cardiopulmonary abnormality.",
    "IMPRESSION: Normal chest radiograph.",
    "There is a small nodule in the right upper lobe.",
    "No fracture is seen. Bones and soft tissues are normal.",
    "Computed tomography of the head shows no haemorrhage.",
    "Magnetic resonance imaging of the brain is within normal limits.",
]


def _build_tokenizer():
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import GemmaTokenizer

    # Trained like Gemma's: BPE over "▁"-joined text.
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.normalizer = normalizers.Replace(" ", "▁")
    bpe.pre_tokenizer = pre_tokenizers.Split("▁", behavior="merged_with_previous")
    bpe.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.Fuse()])
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=_SPECIAL_TOKENS,
        initial_alphabet=list(string.printable),
        show_progress=False,
    )
    bpe.train_from_iterator(_CORPUS * 4, trainer=trainer)
    state = json.loads(bpe.to_str())
    vocab = state["model"]["vocab"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in state["model"]["merges"]]
    return GemmaTokenizer(
        vocab=vocab,
        merges=merges,
        extra_special_tokens={
            "boi_token": "<start_of_image>",
            "eoi_token": "<end_of_image>",
            "image_token": "<image_soft_token>",
            "sot_token": "<start_of_turn>",
            "eot_token": "<end_of_turn>",
        },
        chat_template=CHAT_TEMPLATE,
    )


# Dimensions of a randomly initialised Gemma 3: the tests' tiny one, and one of MedGemma 4B's
# shape (Gemma 3 4B: its text model and SigLIP-So400m at 896 px, 256 tokens an image) for
# measuring speed and memory on a GPU without its weights (bench/gpu_draft.py).
TINY_SHAPE = {
    "text": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": 32,
        "max_position_embeddings": 4096,
        "sliding_window": 64,
    },
    "vision": {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "image_size": 224,
        "patch_size": 14,
    },
    "image_seq_length": 16,
}
MEDGEMMA_4B_SHAPE = {
    "text": {
        "hidden_size": 2560,
        "intermediate_size": 10240,
        "num_hidden_layers": 34,
        "num_attention_heads": 8,
        "num_key_value_heads": 4,
        "head_dim": 256,
        "max_position_embeddings": 131072,
        "sliding_window": 1024,
        "vocab_size": 262208,
    },
    "vision": {
        "hidden_size": 1152,
        "intermediate_size": 4304,
        "num_hidden_layers": 27,
        "num_attention_heads": 16,
        "image_size": 896,
        "patch_size": 14,
    },
    "image_seq_length": 256,
}


def build_tiny_model(path: Path) -> Path:
    """Write a tiny Gemma 3 (weights, tokenizer, processor) to ``path`` once."""
    path = Path(path)
    marker = path / MARKER_FILE
    if marker.exists() and json.loads(marker.read_text()).get("version") == _BUILD_VERSION:
        return path
    build_random_gemma3(path, TINY_SHAPE)
    marker.write_text(json.dumps({"version": _BUILD_VERSION}))
    return path


def build_random_gemma3(path: Path, shape: dict, *, dtype=None) -> Path:
    """Write a randomly initialised Gemma 3 of ``shape`` (weights in ``dtype``, the small
    tokenizer, a processor for its image size) to ``path``."""
    import torch
    from transformers import (
        Gemma3Config,
        Gemma3ForConditionalGeneration,
        Gemma3ImageProcessor,
        Gemma3Processor,
    )

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = _build_tokenizer()
    image_seq_length = shape["image_seq_length"]
    side = shape["vision"]["image_size"]
    image_processor = Gemma3ImageProcessor(size={"height": side, "width": side})
    processor = Gemma3Processor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
        image_seq_length=image_seq_length,
    )
    ids = tokenizer.convert_tokens_to_ids
    config = Gemma3Config(
        text_config={
            "vocab_size": len(tokenizer),
            **shape["text"],
            "pad_token_id": ids("<pad>"),
            "bos_token_id": ids("<bos>"),
            "eos_token_id": [ids("<eos>"), ids("<end_of_turn>")],
        },
        vision_config=shape["vision"],
        mm_tokens_per_image=image_seq_length,
        boi_token_index=ids("<start_of_image>"),
        eoi_token_index=ids("<end_of_image>"),
        image_token_index=ids("<image_soft_token>"),
    )
    torch.manual_seed(0)
    model = Gemma3ForConditionalGeneration(config).eval()
    if dtype is not None:
        model = model.to(dtype)
    model.generation_config.pad_token_id = ids("<pad>")
    model.generation_config.eos_token_id = [ids("<eos>"), ids("<end_of_turn>")]
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path
