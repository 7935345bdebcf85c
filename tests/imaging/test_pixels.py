"""display_array: what a viewer shows by default (modality LUT, window, MONOCHROME1, 8 bits)."""

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from medportal.imaging.pixels import display_array
from tests.conftest import dicom_path


def grey_dataset(values, *, photometric: str = "MONOCHROME2", bits_stored: int = 12, **attributes) -> Dataset:
    """A one-frame greyscale image of unsigned stored values, with the given header attributes."""
    ds = Dataset()
    ds.set_pixel_data(
        np.asarray(values, dtype=np.uint16), photometric_interpretation=photometric, bits_stored=bits_stored
    )
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


# A ramp of stored values across the whole 12-bit range, so every window sees values on both sides.
RAMP = np.arange(0, 4096, 16, dtype=np.uint16).reshape(16, 16)


@pytest.mark.parametrize(
    "name", ["CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm", "MR_small_jp2klossless.dcm"]
)
def test_the_output_is_8_bit_greyscale_of_the_image_size(name):
    ds = pydicom.dcmread(dicom_path(name))
    image = display_array(ds)
    assert image.dtype == np.uint8
    assert image.shape == (ds.Rows, ds.Columns)
    assert image.max() > image.min()


def test_a_compressed_copy_displays_exactly_like_the_uncompressed_original():
    original = display_array(pydicom.dcmread(dicom_path("MR_small.dcm")))
    assert np.array_equal(display_array(pydicom.dcmread(dicom_path("MR_small_RLE.dcm"))), original)
    assert np.array_equal(display_array(pydicom.dcmread(dicom_path("MR_small_jp2klossless.dcm"))), original)


def test_without_a_window_the_image_uses_the_full_grey_scale():
    black, middle, white = display_array(grey_dataset([[100, 200, 300]]))[0]
    assert (black, white) == (0, 255)
    assert 126 <= middle <= 129


def test_monochrome1_is_the_inverse_of_monochrome2_of_the_same_data():
    mono2 = display_array(grey_dataset(RAMP))
    mono1 = display_array(grey_dataset(RAMP, photometric="MONOCHROME1"))
    assert mono1.dtype == np.uint8
    assert np.array_equal(mono1, 255 - mono2)
    # In MONOCHROME1 the lowest value is white, in MONOCHROME2 it is black.
    assert (mono2[0, 0], mono1[0, 0]) == (0, 255)
    assert (mono2[-1, -1], mono1[-1, -1]) == (255, 0)


def test_monochrome1_is_inverted_after_the_window():
    window = {"WindowCenter": 1000, "WindowWidth": 200}
    mono2 = display_array(grey_dataset(RAMP, **window))
    mono1 = display_array(grey_dataset(RAMP, photometric="MONOCHROME1", **window))
    assert np.array_equal(mono1, 255 - mono2)


def test_the_window_from_the_header_is_applied():
    values = [[0, 800, 900, 1000, 1100, 1200, 4000]]
    image = display_array(grey_dataset(values, WindowCenter=1000, WindowWidth=200))
    assert image.dtype == np.uint8
    below, at_low_edge, centre, at_high_edge, above = (image[0, i] for i in (1, 2, 3, 5, 6))
    # Below the window: black; above it: white; the centre: mid-grey.
    assert image[0, 0] == below == at_low_edge == 0
    assert at_high_edge == above == 255
    assert 120 <= centre <= 136
    # Without the window the same value would be near black (it is a quarter of the range).
    assert display_array(grey_dataset(values))[0, 3] < 70


def test_a_window_wider_than_the_image_keeps_its_grey_levels():
    """The window's centre is mid-grey even when nothing in the image reaches the window's edges."""
    image = display_array(grey_dataset([[500, 1000, 1500]], WindowCenter=1000, WindowWidth=2000))
    low, centre, high = image[0]
    assert 56 <= low <= 72
    assert 120 <= centre <= 136
    assert 184 <= high <= 200


def test_the_window_is_applied_to_rescaled_values_not_to_stored_values():
    """A CT soft-tissue window (40/400 HU) on stored values that become HU through the rescale."""
    stored = [[0, 864, 1064, 1264, 2000]]  # -1024, -160, 40, 240, 976 HU
    window = {"WindowCenter": 40, "WindowWidth": 400}
    image = display_array(grey_dataset(stored, RescaleSlope=1, RescaleIntercept=-1024, **window))
    air, window_low, water, window_high, bone = image[0]
    assert air == window_low == 0
    assert 120 <= water <= 136
    assert window_high == bone == 255
    # Read as if the values were already HU, everything but 0 would be white.
    unscaled = display_array(grey_dataset(stored, **window))
    assert unscaled[0, 1:].tolist() == [255, 255, 255, 255]


def test_the_rescale_slope_is_used_too():
    stored = [[0, 432, 532, 632, 1000]]  # slope 2, intercept -1024: -1024, -160, 40, 240, 976 HU
    image = display_array(
        grey_dataset(stored, RescaleSlope=2, RescaleIntercept=-1024, WindowCenter=40, WindowWidth=400)
    )
    air, window_low, water, window_high, bone = image[0]
    assert air == window_low == 0
    assert 120 <= water <= 136
    assert window_high == bone == 255


def test_a_negative_rescale_slope_turns_the_grey_scale_round():
    lowest, middle, highest = display_array(
        grey_dataset([[100, 200, 300]], RescaleSlope=-1, RescaleIntercept=0)
    )[0]
    assert (lowest, highest) == (255, 0)
    assert 126 <= middle <= 129


def test_the_mr_sample_is_shown_through_its_own_window():
    """MR_small says window 600/1600 (-200..1400): its darkest pixel (127) is dark grey, not black."""
    ds = pydicom.dcmread(dicom_path("MR_small.dcm"))
    stored = ds.pixel_array
    image = display_array(ds)
    darkest = image[np.unravel_index(stored.argmin(), stored.shape)]
    assert int(stored.min()) == 127
    assert 48 <= darkest <= 56  # (127 + 200) / 1600 of the grey scale
    assert image[stored >= 1400].tolist() == [255] * int((stored >= 1400).sum())


def test_the_ct_sample_is_shown_in_hounsfield_units():
    """CT_small has RescaleIntercept -1024 and no window: the full HU range maps onto the grey scale."""
    ds = pydicom.dcmread(dicom_path("CT_small.dcm"))
    image = display_array(ds)
    stored = ds.pixel_array
    assert image[np.unravel_index(stored.argmin(), stored.shape)] == 0
    assert image[np.unravel_index(stored.argmax(), stored.shape)] == 255
