"""Installs the OHIF Viewer (the prebuilt ``dist/`` of the npm package ``@ohif/app``) for MedPortal.

``python -m medportal.ohif.install`` (run by bin/setup) fetches the pinned package with npm, checks
it against the pinned integrity, keeps only what MedPortal's reading room needs, points the build
at ``/viewer/`` and leaves it in ``.ohif/dist`` (``MEDPORTAL_OHIF_DIR``). Run again, it does
nothing while the installed build is the pinned one. It never imports Django: it runs before the
application is set up, and in the Dockerfile's build stage.

The dist is built for the site root: webpack's public path ("/") is compiled into every bundle
and worker, and its index.html and CSS name files by absolute paths. MedPortal serves it under
``/viewer/``, so those are rewritten here, once, rather than on every request; the index.html
loses its inline scripts (the Content-Security-Policy allows none), which ``app-config.js``
(MedPortal's view) replaces.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "@ohif/app"
VERSION = "3.13.2"
# The registry's integrity of @ohif/app@3.13.2 (npm view @ohif/app@3.13.2 dist.integrity).
INTEGRITY = "sha512-WZdxmpmG7rqFgW9ZJLcbgr3XCtLi1KDNPoMaeY5PPe6j4G4fjEjjkycZM6C6Zk2F87BKxFfpq+jd5xXZB9E8EA=="
# Bumped when what this installer keeps or rewrites changes, so installed copies are redone.
LAYOUT = 1
MOUNT = "/viewer/"
STAMP = ".medportal-ohif.json"

# What the dist ships that the reading room does not use: the ONNX runtime of the AI segmentation
# tools (136 MB), the whole-slide microscopy viewer, source maps, the service worker (it would
# cache patient images in the browser; its loader also pulls Workbox from a CDN), OIDC and Google
# Cloud sign-in, the demo configuration and the Netlify/serve routing files.
REMOVE = [
    "ort",
    "dicom-microscopy-viewer",
    "customizations",
    "sw.js",
    "init-service-worker.js",
    "silent-refresh.html",
    "oidc-client.min.js",
    "google.js",
    "app-config.js",
    "_headers",
    "_redirects",
    "serve.json",
]
COMPRESSIBLE = {".js", ".css", ".html", ".wasm", ".json", ".svg", ".map", ".txt", ".xml", ".webapp"}


class InstallError(Exception):
    """The viewer could not be installed; the message says why and what to do."""


def default_dir() -> Path:
    return Path(os.environ.get("MEDPORTAL_OHIF_DIR") or Path(__file__).resolve().parents[2] / ".ohif")


def installed_stamp(dist: Path) -> dict | None:
    try:
        return json.loads((dist / STAMP).read_text())
    except (OSError, ValueError):
        return None


def wanted_stamp() -> dict:
    return {"package": PACKAGE, "version": VERSION, "integrity": INTEGRITY, "layout": LAYOUT, "mount": MOUNT}


def _integrity_of(path: Path) -> str:
    digest = hashlib.sha512(path.read_bytes()).digest()
    return "sha512-" + base64.b64encode(digest).decode()


def package_fetch(into: Path) -> Path:
    """The package's tarball, fetched by npm (its registry and cache settings apply)."""
    npm = shutil.which("npm")
    if npm is None:
        raise InstallError(
            "npm is not installed: the OHIF viewer is fetched with it (install Node.js 20 or later "
            "with npm, e.g. apt-get install nodejs npm), or set MEDPORTAL_OHIF_TARBALL to a downloaded "
            f"{PACKAGE}-{VERSION}.tgz"
        )
    done = subprocess.run(
        [npm, "pack", f"{PACKAGE}@{VERSION}", "--pack-destination", str(into), "--silent"],
        capture_output=True,
        text=True,
        cwd=into,
    )
    if done.returncode != 0:
        raise InstallError(f"npm pack {PACKAGE}@{VERSION} failed: {done.stderr.strip()[-2000:]}")
    [tarball] = into.glob("*.tgz")
    return tarball


def _rewrite_index(html: str) -> str:
    # Inline scripts go (the CSP forbids them; app-config.js sets what they set), so does the
    # service worker's loader; every absolute path moves under the mount.
    html = re.sub(r"<script>.*?</script>", "", html, flags=re.S)
    html = re.sub(r'<script[^>]*init-service-worker\.js"[^>]*></script>', "", html)
    html = re.sub(
        r'<script rel="preload" as="script" src="/app-config\.js"></script>',
        '<script src="/app-config.js"></script>',
        html,
    )
    html = re.sub(r'(href|src|content)="/(?!/)', rf'\1="{MOUNT}', html)
    if f'src="{MOUNT}app-config.js"' not in html or "app.bundle." not in html:
        raise InstallError(
            "the package's index.html is not laid out as expected; the installer needs updating"
        )
    return html


def dist_prepare(dist: Path) -> None:
    """Prune and re-point an unpacked dist in place (see the module's docstring)."""
    for name in REMOVE:
        target = dist / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    for path in list(dist.rglob("*.map")):
        path.unlink()
    public_path = re.compile(r'__webpack_require__\.p = "/";')
    rewritten = 0
    for path in dist.rglob("*.js"):
        text = path.read_text(encoding="utf-8")
        new, count = public_path.subn(f'__webpack_require__.p = "{MOUNT}";', text)
        if count:
            path.write_text(new, encoding="utf-8")
            rewritten += count
    if not rewritten:
        raise InstallError(
            "no webpack public path found in the package's bundles; the installer needs updating"
        )
    for path in dist.rglob("*.css"):
        text = path.read_text(encoding="utf-8")
        path.write_text(re.sub(r"url\(/(?!/)", f"url({MOUNT}", text), encoding="utf-8")
    index = dist / "index.html"
    index.write_text(_rewrite_index(index.read_text(encoding="utf-8")), encoding="utf-8")
    manifest = dist / "manifest.json"
    if manifest.exists():
        text = manifest.read_text(encoding="utf-8")
        manifest.write_text(re.sub(r'"/(?!/)', f'"{MOUNT}', text), encoding="utf-8")


def dist_compress(dist: Path) -> None:
    """A .gz beside each text or WebAssembly file, sent to browsers that accept gzip."""
    for path in list(dist.rglob("*")):
        if path.is_file() and path.suffix in COMPRESSIBLE and path.stat().st_size > 1024:
            data = path.read_bytes()
            packed = gzip.compress(data, compresslevel=9, mtime=0)
            if len(packed) < len(data) * 0.9:
                path.with_name(path.name + ".gz").write_bytes(packed)


def size_of(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def viewer_install(*, target: Path, tarball: Path | None = None, force: bool = False) -> Path:
    """Install the pinned OHIF build into ``target/dist`` (nothing to do when it is there)."""
    dist = target / "dist"
    stamp, wanted = installed_stamp(dist) or {}, wanted_stamp()
    if not force and {key: stamp.get(key) for key in wanted} == wanted:
        return dist
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target, prefix=".install-") as work:
        work_dir = Path(work)
        tarball = tarball or package_fetch(work_dir)
        found = _integrity_of(tarball)
        if found != INTEGRITY:
            raise InstallError(f"{tarball.name} is not {PACKAGE}@{VERSION} as published: integrity {found}")
        with tarfile.open(tarball) as archive:
            members = [m for m in archive.getmembers() if m.name.startswith("package/dist/")]
            archive.extractall(work_dir, members=members, filter="data")
        fresh = work_dir / "package" / "dist"
        before = size_of(fresh)
        dist_prepare(fresh)
        kept = size_of(fresh)
        dist_compress(fresh)
        stamp = wanted_stamp() | {
            "bytes_in_package": before,
            "bytes_kept": kept,
            "bytes_with_gzip": size_of(fresh),
        }
        (fresh / STAMP).write_text(json.dumps(stamp, indent=2) + "\n")
        # Swap in whole: a server reading the old copy never sees half of the new one.
        old = work_dir / "old"
        if dist.exists():
            dist.rename(old)
        fresh.rename(dist)
    return dist


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=f"Install the OHIF viewer ({PACKAGE}@{VERSION}) for MedPortal."
    )
    parser.add_argument("--target", type=Path, default=default_dir(), help="folder (default: .ohif)")
    parser.add_argument(
        "--tarball",
        type=Path,
        default=os.environ.get("MEDPORTAL_OHIF_TARBALL") or None,
        help=f"a downloaded {PACKAGE}-{VERSION}.tgz instead of fetching it with npm",
    )
    parser.add_argument("--force", action="store_true", help="install again even when it is there")
    args = parser.parse_args(argv)
    try:
        dist = viewer_install(target=args.target, tarball=args.tarball, force=args.force)
    except InstallError as exc:
        print(f"OHIF viewer: {exc}", file=sys.stderr)
        return 1
    stamp = installed_stamp(dist) or {}
    print(
        f"OHIF viewer {VERSION} in {dist}: {stamp.get('bytes_kept', 0) / 1e6:.1f} MB kept of "
        f"{stamp.get('bytes_in_package', 0) / 1e6:.1f} MB, "
        f"{stamp.get('bytes_with_gzip', 0) / 1e6:.1f} MB with gzip copies"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
