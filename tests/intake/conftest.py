"""The DIMSE SCP fixtures (defined with the SCP's own tests) for every intake test module."""

from tests.intake.test_dimse import scp, server  # noqa: F401
