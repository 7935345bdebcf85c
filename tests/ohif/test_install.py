"""The viewer's installer (python -m medportal.ohif.install, run by bin/setup)."""

from __future__ import annotations

import io
import tarfile

import pytest
from django.conf import settings

from medportal.ohif.install import InstallError, main, viewer_install


def test_a_package_that_is_not_the_pinned_one_is_refused_and_nothing_is_installed(tmp_path, capsys):
    fake = tmp_path / "ohif-app-3.13.2.tgz"
    with tarfile.open(fake, "w:gz") as archive:
        data = b"<html></html>"
        info = tarfile.TarInfo("package/dist/index.html")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))

    with pytest.raises(InstallError, match=r"is not @ohif/app@3\.13\.2 as published: integrity sha512-"):
        viewer_install(target=tmp_path / "ohif", tarball=fake)
    assert not (tmp_path / "ohif" / "dist").exists()
    assert main(["--target", str(tmp_path / "ohif"), "--tarball", str(fake)]) == 1
    assert "OHIF viewer: " in capsys.readouterr().err


def test_an_installed_build_is_left_as_it_is():
    dist = settings.MEDPORTAL_OHIF_DIR / "dist"
    before = (dist / "index.html").stat().st_mtime_ns
    assert viewer_install(target=settings.MEDPORTAL_OHIF_DIR) == dist  # no fetch: the stamp matches
    assert (dist / "index.html").stat().st_mtime_ns == before
