"""A real-sized CT volume: preparing the model's 85 images vs reading the whole series.

A synthetic 300-slice 512×512 CT (16-bit, one file per slice, shuffled instance numbers) is
ingested into an image store in a temporary folder (SQLite, the embedded defaults). Then,
side by side in one run, alternately, each timed on warm files:

- read: every one of the 300 files read with pydicom and its pixels decoded (what a
  pipeline that loads the series first does);
- prep: what the worker does (inference_worker.volume): the 300 headers read without their
  pixels (scanned from each file's first bytes, inference_worker.slice_scan), the series
  ordered by position, 85 slices sampled as Google's notebook does, only those decoded (read
  where the scan found their pixels), windowed into RGB and sized for the model (padded square,
  scaled down only above 896×896, so these 512×512 slices stay as they are).

Peak memory of one preparation is measured apart (tracemalloc slows what it traces): what
tracemalloc sees (numpy, Python objects) plus the pixels of the images made, which Pillow
holds outside it.
The last line: volume_prep_vs_read=<prep/read> images=85 prep_ms=<ms> read_ms=<ms>.
Usage: .venv/bin/python bench/volume.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SLICES, SIZE = 300, 512


def synthetic_ct() -> list[tuple[str, bytes]]:
    import random

    import numpy as np

    from tests.inference_worker.synthetic import abdomen_hu, ct_series, new_study

    numbers = list(range(1, SLICES + 1))
    random.Random(7).shuffle(numbers)
    files = ct_series(new_study(body_part="ABDOMEN"), slices=SLICES, size=SIZE, instance_numbers=numbers)
    # Give the slices structure (a body and a lesion), not one value: decoding and windowing
    # then work on realistic numbers.
    import pydicom

    out = []
    for k, (name, data) in enumerate(files):
        import io

        ds = pydicom.dcmread(io.BytesIO(data))
        ds.PixelData = (abdomen_hu(k, SIZE) + 1024).astype(np.uint16).tobytes()
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        out.append((name, buffer.getvalue()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="medportal-volume-"))
    os.environ.pop("DATABASE_URL", None)
    os.environ.update(
        MEDPORTAL_DATA_DIR=str(work),
        DJANGO_SETTINGS_MODULE="medportal.settings",
        MEDPORTAL_PIXEL_SOURCE="storage",
    )
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "-v0"], check=True, cwd=ROOT)
    import django

    django.setup()
    from django.conf import settings

    # Ingest announces new studies to open worklists: no one listens here.
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    import pydicom

    from inference_worker.volume import study_volume, volume_images
    from medportal.imaging.ingest import IncomingFile, study_ingest
    from medportal.imaging.models import Instance, Study, storage_name_for
    from medportal.imaging.storage import image_storage

    started = time.perf_counter()
    files = synthetic_ct()
    result, _ = study_ingest(files=[IncomingFile(name, data) for name, data in files], uploader=None)
    assert not result.rejected, result.rejected[:3]
    study = Study.objects.get()
    instances = list(Instance.objects.filter(series__study=study))
    print(f"ingested {len(instances)} slices of {SIZE}x{SIZE} in {time.perf_counter() - started:.1f} s")

    def read_all() -> int:
        total = 0
        for instance in instances:
            with image_storage().open(storage_name_for(instance.sha256), "rb") as handle:
                total += int(pydicom.dcmread(handle).pixel_array.size)
        return total

    def prepare() -> list:
        volume = study_volume(study, "CT")
        images, _ = volume_images(volume, "CT")
        return images

    read_ms, prep_ms = [], []
    for _ in range(args.runs + 1):  # the first of each warms the files and imports up
        t = time.perf_counter()
        read_all()
        read_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        images = prepare()
        prep_ms.append((time.perf_counter() - t) * 1000)
        assert len(images) == 85 and images[0].size == (SIZE, SIZE)  # as the reference gives them
        del images
    read_ms, prep_ms = read_ms[1:], prep_ms[1:]

    tracemalloc.start()
    images = prepare()
    _, traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # Pillow allocates image memory itself, unseen by tracemalloc.
    pillow = sum(image.width * image.height * len(image.getbands()) for image in images)
    del images

    if os.environ.get("BENCH_PROFILE"):
        import cProfile
        import pstats

        cProfile.runctx("prepare()", globals(), locals(), str(work / "prep.prof"))
        pstats.Stats(str(work / "prep.prof")).sort_stats("cumulative").print_stats(25)
    read, prep = statistics.median(read_ms), statistics.median(prep_ms)
    print(
        f"read all {len(instances)} files (pydicom, pixels decoded): p50 {read:.0f} ms over {args.runs} runs"
    )
    print(f"prepare 85 model images (headers, order, decode 85, window, resize): p50 {prep:.0f} ms")
    print(
        f"prep peak memory: {(traced + pillow) / 2**20:.0f} MiB "
        f"(tracemalloc peak {traced / 2**20:.0f} MiB + Pillow images {pillow / 2**20:.0f} MiB)"
    )
    print(f"volume_prep_vs_read={prep / read:.2f} images=85 prep_ms={prep:.0f} read_ms={read:.0f}")


if __name__ == "__main__":
    main()
