"""Make a published asv dashboard work without the internet.

asv's index.html loads jQuery, flot, bootstrap, stupidtable and blueimp-md5 from CDNs; with
no internet it shows only "One or more external (JavaScript) dependencies of airspeed
velocity failed to load". This copies the same files out of the npm packages pinned in
offline_assets.toml into HTML_DIR/vendor/ and points index.html at them. `npm pack` fetches
the packages, so npm's registry settings and its cache apply: once fetched, later runs work
offline. Every tarball and file is checked against its pinned hash before anything is
written; any failure is one line and exit status 2, with HTML_DIR as it was.

Usage: python asv_bench/offline_assets.py [HTML_DIR]    (default: asv_bench/html)
"""
import base64
import hashlib
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from pathlib import Path

from cifar_engine.errors import UserError
from cifar_engine.util.atomic import TEMP_SUFFIX, atomic_write, temp_prefix

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "offline_assets.toml"
VENDOR = "vendor"
# A <script src> or stylesheet <link href> that the browser would fetch from another host.
_EXTERNAL = re.compile(r'<(?:script|link)\b[^>]*\b(?:src|href)="((?:https?:)?//[^"]+)"[^>]*>')
_STYLESHEET_OR_SCRIPT = re.compile(r'^<script\b|\brel="stylesheet"')


def load_manifest(path=MANIFEST):
    """{"packages": {"name@version": tarball SRI}, "files": [{url, package, path, integrity}]}."""
    with open(path, "rb") as file:
        return tomllib.load(file)


def sri(data, algorithm):
    """The Subresource Integrity value of `data` (bytes): "sha256-<base64 digest>"."""
    return f"{algorithm}-{base64.b64encode(hashlib.new(algorithm, data).digest()).decode()}"


def check(data, integrity, what):
    """Raise UserError naming `what` unless `data` (bytes) has the pinned `integrity`."""
    got = sri(data, integrity.split("-", 1)[0])
    if got != integrity:
        raise UserError(f"{what}: hash mismatch (got {got}, pinned {integrity} in {MANIFEST.name})")


def local_path(entry):
    """Where a manifest file goes, relative to the html folder: vendor/NAME-VERSION/PATH."""
    return f"{VENDOR}/{entry['package'].replace('@', '-')}/{entry['path']}"


def fetch_packages(specs, folder):
    """`npm pack` each "name@version" of `specs` into `folder`; {spec: tarball Path}."""
    npm = shutil.which("npm")
    if npm is None:
        raise UserError("npm not found: install Node.js's npm (Debian: apt-get install npm)")
    command = [npm, "pack", *specs, "--prefer-offline", "--ignore-scripts", "--loglevel=error",
               "--pack-destination", str(folder)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()] or ["no message"]
        raise UserError(f"npm pack {' '.join(specs)}: failed ({lines[0].strip()})")
    return {spec: folder / f"{spec.replace('@', '-')}.tgz" for spec in specs}


def read_files(manifest, tarballs):
    """{local path: bytes} of every manifest file, each checked against its pinned hash."""
    for spec, tarball in tarballs.items():
        check(tarball.read_bytes(), manifest["packages"][spec], f"npm package {spec}")
    files = {}
    for entry in manifest["files"]:
        with tarfile.open(tarballs[entry["package"]]) as archive:
            try:
                data = archive.extractfile(f"package/{entry['path']}").read()
            except (KeyError, AttributeError):
                raise UserError(f"npm package {entry['package']}: "
                                f"has no file {entry['path']}") from None
        check(data, entry["integrity"], f"{entry['package']}/{entry['path']}")
        files[local_path(entry)] = data
    return files


def _tag(src):
    """A pattern matching the <script> or <link> tag that loads `src`."""
    return re.compile(r'<(?:script|link)\b[^>]*"' + re.escape(src) + r'"[^>]*>')


def point_at_local(html, entries, name="index.html"):
    """`html` (the text of the file `name`) with each entry's CDN url replaced by its local
    copy and that copy's integrity; raises UserError if a url is missing or an external
    script or style sheet would remain."""
    for entry in entries:
        match = _tag(entry["url"]).search(html)
        if match is None:
            if _tag(local_path(entry)).search(html):
                continue  # pointed at its local copy by an earlier run
            raise UserError(f"{name}: loads no {entry['url']} (asv changed its pins? "
                            f"update {MANIFEST.name})")
        new = match.group(0).replace(f'"{entry["url"]}"', f'"{local_path(entry)}"')
        new = re.sub(r'\bintegrity="[^"]*"', f'integrity="{entry["integrity"]}"', new)
        html = html[:match.start()] + new + html[match.end():]
    for match in _EXTERNAL.finditer(html):
        if _STYLESHEET_OR_SCRIPT.search(match.group(0)):
            raise UserError(f"{name}: still loads {match.group(1)} from the internet "
                            f"(add it to {MANIFEST.name})")
    return html


def _temp_folder(html_dir):
    """A new temporary folder in `html_dir`, named as engine/util/atomic.py names its own."""
    return Path(tempfile.mkdtemp(prefix=temp_prefix(VENDOR), suffix=TEMP_SUFFIX, dir=html_dir))


def write_vendor(html_dir, files):
    """Write `files` ({relative path: bytes}) as html_dir/vendor, replacing it whole."""
    staging = _temp_folder(html_dir)
    try:
        for relative, data in files.items():
            target = staging / Path(relative).relative_to(VENDOR)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        vendor = html_dir / VENDOR
        if vendor.exists():
            old = _temp_folder(html_dir)
            vendor.rename(old / VENDOR)
            staging.rename(vendor)
            shutil.rmtree(old)
        else:
            staging.rename(vendor)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def make_offline(html_dir, manifest=None):
    """Copy the pinned files into html_dir/vendor/ and point html_dir/index.html at them."""
    html_dir = Path(html_dir)
    manifest = manifest or load_manifest()
    index = html_dir / "index.html"
    if not index.is_file():
        raise UserError(f"{index}: not found (run `asv publish` first)")
    html = point_at_local(index.read_text(encoding="utf-8"), manifest["files"], index)
    with tempfile.TemporaryDirectory() as folder:
        files = read_files(manifest, fetch_packages(list(manifest["packages"]), Path(folder)))
    write_vendor(html_dir, files)
    with atomic_write(index, "w") as file:
        file.write(html)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    html_dir = Path(argv[0]) if argv else HERE / "html"
    try:
        make_offline(html_dir)
    except (UserError, OSError) as err:
        message = err if isinstance(err, UserError) else f"{html_dir}: {err.strerror or err}"
        print(f"offline_assets: {message}", file=sys.stderr)
        return 2
    print(f"offline_assets: {html_dir}/index.html now loads its scripts from {VENDOR}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
