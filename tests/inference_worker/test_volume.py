"""A CT or MR study read as one series of slices: which series, in what order, which slices."""

from __future__ import annotations

import random

import numpy as np
import pytest

from inference_worker import volume as volume_module
from inference_worker.volume import NoVolume, sample_indices, study_volume, volume_images
from medportal.imaging.ingest import IncomingFile
from medportal.imaging.models import Study
from medportal.intake.receive import studies_receive
from tests.inference_worker.synthetic import (
    SAGITTAL,
    ct_series,
    enhanced_ct,
    new_study,
    slice_hu,
)


def received(user, files: list[tuple[str, bytes]]) -> Study:
    result, _ = studies_receive(
        files=[IncomingFile(name, data) for name, data in files], uploader=user, auto_draft=False
    )
    assert result.rejected == [], result.rejected
    return Study.objects.get()


def red(hu: int) -> int:
    """The wide window's value for ``hu``, worked as the reference does (round half to even)."""
    return int(np.round(np.float32(min(max(hu, -1024), 1024) + 1024) / np.float32(2048) * np.float32(255)))


def slice_of(image) -> int:
    """Which synthetic slice an image the model receives shows (each slice is one value)."""
    pixels = np.asarray(image)
    value = int(pixels[pixels.shape[0] // 2, pixels.shape[1] // 2, 0])
    matches = [k for k in range(200) if red(slice_hu(k)) == value]
    assert len(matches) == 1, (value, matches)
    return matches[0]


def test_sampling_is_the_reference_notebooks():
    # By hand, for 100 slices: i / 85 * 99 for i = 1 -> 1.16 -> 1; 43 -> 50.08 -> 50; 85 -> 99.
    picked = sample_indices(100)
    assert len(picked) == 85
    assert (picked[0], picked[42], picked[-1]) == (1, 50, 99)
    assert 0 not in picked and picked == sorted(set(picked))
    # 300 slices: i = 1 -> 3.52 -> 4; i = 2 -> 7.04 -> 7; i = 85 -> 299.
    assert sample_indices(300)[:2] == [4, 7] and sample_indices(300)[-1] == 299
    # Up to 85, every slice.
    assert sample_indices(85) == list(range(85)) and sample_indices(7) == list(range(7))


@pytest.mark.django_db
def test_the_axial_series_is_chosen_and_ordered_by_position_not_instance_number(technologist):
    study = new_study(body_part="CHEST")
    numbers = list(range(1, 21))
    random.Random(3).shuffle(numbers)
    axial = ct_series(study, slices=20, number=2, instance_numbers=numbers)
    sagittal = ct_series(study, slices=30, number=3, orientation=SAGITTAL, description="SAG MPR")
    localizer = ct_series(study, slices=2, number=1, localizer=True, description="SCOUT")
    stored = received(technologist, axial + sagittal + localizer)

    volume = study_volume(stored, "CT")

    assert volume.series.series_number == 2
    assert volume.ordered_by == "position along the slice normal"
    assert volume.spacing_mm == 1.25 and volume.thickness_mm == 1.25
    assert len(volume.sampled) == 20
    images, made = volume_images(volume, "CT")
    assert [slice_of(image) for image in images] == list(range(20))  # feet to head, whatever the numbers
    assert made["windows"] == [[-1024, 1024], [-135, 215], [0, 80]]
    verdicts = {c["series_number"]: c["verdict"] for c in volume.considered}
    assert verdicts == {1: "a localizer", 2: "chosen", 3: "sagittal, not axial"}


@pytest.mark.django_db
def test_a_long_series_gives_85_slices_and_only_those_are_decoded(technologist, monkeypatch):
    stored = received(technologist, ct_series(new_study(body_part="CHEST"), slices=100, size=8))
    read: list[str] = []
    real = volume_module.instance_bytes

    def counted(instance):
        read.append(instance.sop_instance_uid)
        return real(instance)

    monkeypatch.setattr(volume_module, "instance_bytes", counted)

    volume = study_volume(stored, "CT")
    images, _ = volume_images(volume, "CT")

    assert len(volume.slices) == 100 and len(images) == 85
    assert [slice_of(image) for image in images] == sample_indices(100)
    assert len(read) == 85  # the other 15 files' pixels were never read


@pytest.mark.django_db
def test_a_multi_frame_enhanced_ct_is_a_volume_ordered_by_its_frames_positions(technologist):
    study = new_study(body_part="ABDOMEN")
    stored = received(technologist, [enhanced_ct(study, frames=12)] + ct_series(study, slices=3, number=2))

    volume = study_volume(stored, "CT")
    images, _ = volume_images(volume, "CT")

    assert volume.series.series_number == 5  # the enhanced one; the other has 3 slices
    assert [s.frame for s in volume.sampled] == list(range(11, -1, -1))  # stored head to feet
    assert [slice_of(image) for image in images] == list(range(12))
    assert volume.spacing_mm == 2.0


@pytest.mark.django_db
def test_an_mr_volume_is_scaled_over_all_its_slices(technologist):
    stored = received(technologist, ct_series(new_study(body_part="HEAD"), slices=6, modality="MR"))
    images, made = volume_images(study_volume(stored, "MR"), "MR")
    # Slice k holds 10 * (k + 1): 10..60 over the volume is 0..255 (by hand: 30 -> 102).
    centres = [int(np.asarray(image)[8, 8, 0]) for image in images]
    assert centres == [0, 51, 102, 153, 204, 255]
    assert made["method"] == "mr-volume-min-max"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("series", "says"),
    [
        (lambda s: ct_series(s, slices=4), "4 slices (a volume has at least 5)"),
        (lambda s: ct_series(s, slices=8, orientation=SAGITTAL), "sagittal, not axial"),
        (lambda s: ct_series(s, slices=3, localizer=True), "a localizer"),
    ],
)
def test_a_study_without_a_usable_series_says_why_series_by_series(technologist, series, says):
    stored = received(technologist, series(new_study(body_part="CHEST")))
    with pytest.raises(NoVolume, match="no CT series") as refused:
        study_volume(stored, "CT")
    assert says in str(refused.value)


@pytest.mark.django_db
def test_uneven_spacing_is_not_a_volume(technologist):
    study = new_study(body_part="CHEST")
    files = ct_series(study, slices=8)
    del files[4]  # a missing slice: one gap twice the others
    stored = received(technologist, files)
    with pytest.raises(NoVolume, match="uneven spacing"):
        study_volume(stored, "CT")
