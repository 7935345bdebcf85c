"""A whole-CT draft on a GPU: a model of MedGemma 4B's shape, random weights, 85 slices.

MedGemma's weights cannot be downloaded here, so the model is a Gemma 3 of the 4B model's
dimensions (inference_worker.tiny_model.MEDGEMMA_4B_SHAPE: its text model, SigLIP at 896 px,
256 tokens an image) with random weights, written once in bf16 to a folder and loaded by the
worker's own engine (TransformersEngine: bf16 on CUDA). A synthetic abdominal CT of 300
slices (bench/volume.py's: a body and a lesion) is sampled to 85 slices as the worker samples a series, each
windowed into RGB with the reference CT windows and sized to 896×896; the user turn is built
as the worker builds a volume's (instruction, each slice and its label, the question last).

Then the draft is generated, streamed as the worker streams it, and timed: time to first
token (the chat template, the image processor, the vision tower on 85 images and the
prefill of ~22,000 tokens), tokens/s after it, and the GPU's peak memory. The text is
meaningless (random weights); the figures are the model's real cost.

Last line: gpu_ttft_ms=… gpu_tokens_per_s=… gpu_peak_gib=… images=85 prompt_tokens=… device=…
Usage: .venv/bin/python bench/gpu_draft.py [--model-dir /tmp/medgemma-4b-shaped] [--max-new-tokens 256]
       .venv/bin/python bench/gpu_draft.py --shape tiny   (the same path on the CPU, in seconds)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SLICES, SIZE = 300, 512


def synthetic_ct_slices(count: int) -> list:
    """``count`` slices sampled from a 300-slice CT as the worker samples a series, each
    windowed and sized for the model."""
    from PIL import Image

    from inference_worker.preprocessing import ct_rgb, model_size
    from inference_worker.volume import sample_indices
    from tests.inference_worker.synthetic import abdomen_hu

    return [model_size(Image.fromarray(ct_rgb(abdomen_hu(k, SIZE)))) for k in sample_indices(SLICES, count)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shape", choices=["medgemma-4b", "tiny"], default="medgemma-4b")
    parser.add_argument("--model-dir", type=Path, default=None, help="where the random model is written once")
    parser.add_argument("--slices", type=int, default=85)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medportal.settings")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import django

    django.setup()
    import torch

    from inference_worker.draft_inputs import volume_parts
    from inference_worker.engines.transformers_engine import TransformersEngine
    from inference_worker.prompts import prompt_for
    from inference_worker.tiny_model import MEDGEMMA_4B_SHAPE, TINY_SHAPE, build_random_gemma3

    shape = MEDGEMMA_4B_SHAPE if args.shape == "medgemma-4b" else TINY_SHAPE
    folder = args.model_dir or Path(f"/tmp/medportal-random-{args.shape}")
    if not (folder / "config.json").exists():
        started = time.perf_counter()
        build_random_gemma3(folder, shape, dtype=torch.bfloat16 if args.shape == "medgemma-4b" else None)
        print(f"random {args.shape} model written to {folder} in {time.perf_counter() - started:.0f} s")

    started = time.perf_counter()
    engine = TransformersEngine(str(folder))
    device = torch.cuda.get_device_name() if engine.device == "cuda" else engine.device
    print(f"loaded on {device} as {engine.dtype} in {time.perf_counter() - started:.1f} s")

    images = synthetic_ct_slices(args.slices)
    prompt = prompt_for(modality="CT", body_part="ABDOMEN", slices=len(images))
    parts = volume_parts(prompt, images)
    if engine.device == "cuda":
        torch.cuda.reset_peak_memory_stats()

    started = time.perf_counter()
    generation = engine.stream(system=prompt.system, parts=parts, max_new_tokens=args.max_new_tokens)
    first = last = None
    for _ in generation:
        now = time.perf_counter()
        first = first or now
        last = now
    ttft_ms = (first - started) * 1000
    rate = (generation.generated_tokens - 1) / (last - first) if last > first else 0.0
    peak_gib = torch.cuda.max_memory_allocated() / 2**30 if engine.device == "cuda" else 0.0
    prompt_tokens = generation.prompt_tokens
    print(f"generated {generation.generated_tokens} tokens; params {generation.params}")
    print(
        f"gpu_ttft_ms={ttft_ms:.0f} gpu_tokens_per_s={rate:.1f} gpu_peak_gib={peak_gib:.2f} "
        f"images={len(images)} prompt_tokens={prompt_tokens} device={device.replace(' ', '_')}"
    )


if __name__ == "__main__":
    main()
