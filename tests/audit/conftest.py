import pytest


@pytest.fixture(autouse=True)
def anchor_dir(settings, tmp_path):
    """Each test's own anchor log: the test database is emptied between tests, the anchors of
    an earlier test's trail would not match the next one's."""
    settings.MEDPORTAL_AUDIT_ANCHOR_DIR = tmp_path / "anchors"
    return settings.MEDPORTAL_AUDIT_ANCHOR_DIR
