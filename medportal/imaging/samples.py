"""Sample studies built from the DICOM files that ship inside pydicom (no download)."""

from pathlib import Path

from pydicom.data import get_testdata_file

from medportal.imaging.ingest import IncomingFile

SAMPLE_FILES = ["CT_small.dcm"]


def sample_files() -> list[IncomingFile]:
    files = []
    for name in SAMPLE_FILES:
        path = Path(get_testdata_file(name))
        files.append(IncomingFile(name=name, data=path.read_bytes()))
    return files
