"""Fixtures for this folder's tests: a real web server for the DICOMweb tests."""

from tests.dicomweb_server import dicomweb_server  # noqa: F401
