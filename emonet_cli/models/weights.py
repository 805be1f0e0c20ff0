"""EmoNet weights: where they are looked for, and how they are downloaded and verified (loading
a checkpoint into the model is `checkpoint.py`'s job, so that this module needs no torch).

Resolution order for the file of an `nclass`-class model:
  1. an explicit `--weights` file (or folder holding `emonet_{nclass}.pth`),
  2. `$EMONET_WEIGHTS` (file or folder),
  3. the checkout's `weights/` folder (source checkouts only),
  4. the user cache folder (see `cache_dir`), where downloads go.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import socket
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path

from tqdm import tqdm

from emonet_cli import __version__
from emonet_cli.constants import NCLASS_CHOICES
from emonet_cli.errors import WeightsError
from emonet_cli.formats.fileio import atomic_path

log = logging.getLogger("emonet")

URL_TEMPLATE = (
    "https://github.com/face-analysis/emonet/raw/refs/heads/master/pretrained/emonet_{nclass}.pth"
)
URL_ENV = "EMONET_WEIGHTS_URL"
SHA256_ENV = "EMONET_WEIGHTS_SHA256_{nclass}"
WEIGHTS_ENV = "EMONET_WEIGHTS"
CACHE_ENV = "EMONET_CACHE"
CHUNK_SIZE = 1 << 20
# Only a source checkout has this folder; an installed package has no `weights/` beside it.
CHECKOUT_WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "weights"


@dataclass(frozen=True)
class PublishedWeights:
    nclass: int
    filename: str
    url: str
    sha256: str


PUBLISHED: dict[int, PublishedWeights] = {
    nclass: PublishedWeights(
        nclass=nclass,
        filename=f"emonet_{nclass}.pth",
        url=URL_TEMPLATE.replace("{nclass}", str(nclass)),
        sha256=sha256,
    )
    for nclass, sha256 in (
        (5, "1d8fac689dc04fc65a8a25c050bd5888e1fc794fcf71c2b20a1f2e6b78d933dd"),
        (8, "52918cffba56f31886e6959f6837266a5f7ef5c0a552baf4c6dabe1e8fa9bc97"),
    )
}


def expected_weights(nclass: int) -> PublishedWeights:
    """The published file for `nclass`, with the URL and SHA-256 overrides of the environment
    (`EMONET_WEIGHTS_URL`, `EMONET_WEIGHTS_SHA256_5`, `EMONET_WEIGHTS_SHA256_8`) applied."""
    if nclass not in PUBLISHED:
        raise ValueError(f"nclass must be one of {NCLASS_CHOICES}, not {nclass}")
    expected = PUBLISHED[nclass]
    url_template = os.environ.get(URL_ENV)
    if url_template:
        if "{nclass}" not in url_template:
            raise WeightsError(f"{URL_ENV} must contain {{nclass}}, got {url_template!r}")
        expected = replace(expected, url=url_template.replace("{nclass}", str(nclass)))
    sha_name = SHA256_ENV.format(nclass=nclass)
    sha256 = os.environ.get(sha_name)
    if sha256:
        expected = replace(expected, sha256=checked_sha256(sha256, sha_name))
    return expected


def checked_sha256(text: str, what: str) -> str:
    digest = text.strip().lower()
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise WeightsError(f"{what} is not a SHA-256 (64 hex digits): {text!r}")
    return digest


def cache_dir() -> Path:
    """The user cache folder: `$EMONET_CACHE`, else `$XDG_CACHE_HOME/emonet`, else
    `~/.cache/emonet`. Empty variables count as unset, as the XDG specification says."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "emonet"
    return Path.home() / ".cache" / "emonet"


def checkout_weights_dir() -> Path | None:
    return CHECKOUT_WEIGHTS_DIR if CHECKOUT_WEIGHTS_DIR.is_dir() else None


@dataclass(frozen=True)
class Candidate:
    """A place the weights are looked for. `named` is the file or folder the user gave (with
    --weights or $EMONET_WEIGHTS): a named file must exist, a named folder is only searched."""

    source: str
    path: Path
    named: Path | None = None

    @property
    def is_named_file(self) -> bool:
        return self.named is not None and not self.named.is_dir()


def named_candidate(source: str, named: Path, filename: str) -> Candidate:
    path = named / filename if named.is_dir() else named
    return Candidate(source, path, named)


def candidates(nclass: int, weights: str | Path | None = None) -> list[Candidate]:
    """The places looked in for the `nclass`-class file, in resolution order."""
    filename = expected_weights(nclass).filename
    found = []
    if weights is not None:
        found.append(named_candidate("--weights", Path(weights).expanduser(), filename))
    if os.environ.get(WEIGHTS_ENV):
        env_path = Path(os.environ[WEIGHTS_ENV]).expanduser()
        found.append(named_candidate(WEIGHTS_ENV, env_path, filename))
    checkout = checkout_weights_dir()
    if checkout is not None:
        found.append(Candidate("checkout", checkout / filename))
    found.append(Candidate("cache", cache_dir() / filename))
    return found


def find_candidate(nclass: int, weights: str | Path | None = None) -> Candidate | None:
    for candidate in candidates(nclass, weights):
        if candidate.path.is_file():
            return candidate
        if candidate.named is not None and not candidate.named.exists():
            raise WeightsError(f"{candidate.source}: {candidate.named} does not exist")
        if candidate.is_named_file:
            raise WeightsError(f"{candidate.source}: {candidate.named} is not a regular file")
    return None


def find_weights(nclass: int, weights: str | Path | None = None) -> Path | None:
    """The file that would be used for the `nclass`-class model, or None if there is none.
    A `weights` path or `$EMONET_WEIGHTS` naming nothing that exists is a WeightsError."""
    found = find_candidate(nclass, weights)
    return found.path if found is not None else None


def placement_hint(nclass: int, folder: Path | None = None) -> str:
    expected = expected_weights(nclass)
    return (
        f"place {expected.filename} (SHA-256 {expected.sha256}) in {folder or cache_dir()}, "
        f"or set {WEIGHTS_ENV} or pass --weights to use a file elsewhere"
    )


def weights_not_found(
    nclass: int, weights: str | Path | None = None, why: str = ""
) -> WeightsError:
    """The one-line error for weights found nowhere: where they were looked for, and how to
    put them in place (`why` says why they were not downloaded instead)."""
    looked_in = ", ".join(str(c.path.parent) for c in candidates(nclass, weights))
    return WeightsError(
        f"no weights for the {nclass}-class model in {looked_in}{' ' + why if why else ''}: "
        f"run `emonet weights fetch --nclass {nclass}`, or download "
        f"{expected_weights(nclass).url} and {placement_hint(nclass)}"
    )


def resolve_weights(
    nclass: int, weights: str | Path | None = None, offline: bool = False, progress: bool = True
) -> Path:
    """The file to use for the `nclass`-class model; downloaded to the cache if found nowhere,
    unless `offline`."""
    found = find_weights(nclass, weights)
    if found is not None:
        return found
    if offline:
        raise weights_not_found(nclass, weights, "and --offline forbids downloading them")
    return fetch_weights(nclass, progress=progress)


@dataclass(frozen=True)
class WeightsStatus:
    """One place the `nclass`-class file is looked for, for `emonet weights list`."""

    nclass: int
    source: str
    path: Path
    size: int | None  # None: no file there
    sha256: str | None
    published_as: int | None  # nclass of the expected file with this SHA-256, if any
    selected: bool  # the file resolution picks

    @property
    def verified(self) -> bool:
        return self.published_as == self.nclass

    @property
    def verdict(self) -> str:
        """'missing', or the size and whether the file is the published one."""
        if self.size is None:
            return "missing"
        size = f"{self.size / 1e6:.1f} MB"
        if self.verified:
            return f"{size}  verified"
        if self.published_as is not None:
            return f"{size}  not the published file (it is the {self.published_as}-class one)"
        return f"{size}  not the published file"


def weights_inventory(nclass: int) -> list[WeightsStatus]:
    """Every place the `nclass`-class file is looked for, in resolution order, with what is
    there. Unlike `find_weights`, a named path that does not exist is listed, not an error."""
    known = {expected_weights(n).sha256: n for n in NCLASS_CHOICES}
    rows = []
    selected_seen = False
    for candidate in candidates(nclass):
        if candidate.path.is_file():
            sha256 = sha256_file(candidate.path)
            size = candidate.path.stat().st_size
        else:
            sha256 = size = None
        selected = sha256 is not None and not selected_seen
        selected_seen = selected_seen or selected
        published_as = known.get(sha256) if sha256 else None
        rows.append(
            WeightsStatus(
                nclass, candidate.source, candidate.path, size, sha256, published_as, selected
            )
        )
    return rows


_sha256_cache: dict[tuple[str, int, int], str] = {}


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, remembered in memory for as long as its size and mtime stay."""
    path = Path(path).resolve()
    try:
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        if key not in _sha256_cache:
            _sha256_cache[key] = hash_contents(path)
    except OSError as exc:
        raise WeightsError(f"cannot read {path}: {exc.strerror or exc}") from None
    return _sha256_cache[key]


def hash_contents(path: Path) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_SIZE):
            hasher.update(chunk)
    return hasher.hexdigest()


class DownloadFailed(Exception):
    """A network failure, with a short reason for the message."""


def fetch_weights(
    nclass: int,
    dest_dir: Path | None = None,
    url: str | None = None,
    sha256: str | None = None,
    progress: bool = True,
    timeout: float = 30.0,
) -> Path:
    """Download the `nclass`-class weights into `dest_dir` (default: the cache folder) and
    check their SHA-256. The file appears only once complete and verified; a verified file
    already there is kept without downloading."""
    expected = expected_weights(nclass)
    url = url or expected.url
    sha256 = checked_sha256(sha256, "sha256") if sha256 else expected.sha256
    dest_dir = Path(dest_dir) if dest_dir is not None else cache_dir()
    target = dest_dir / expected.filename
    if target.is_file():
        if sha256_file(target) == sha256:
            log.info("%s is already there and verified", target)
            return target
        log.warning(
            "%s is not the expected file; downloading the expected one to replace it", target
        )
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WeightsError(f"cannot create {dest_dir}: {exc.strerror or exc}") from None

    log.info("downloading %s to %s", url, target)
    try:
        with atomic_path(target) as tmp:
            digest = download(url, tmp, timeout, progress, expected.filename)
            if digest != sha256:
                raise WeightsError(
                    f"the file downloaded from {url} has SHA-256 {digest}, not the expected "
                    f"{sha256}; it was not kept (a proxy or mirror may serve another file)"
                )
    except DownloadFailed as exc:
        raise WeightsError(
            f"could not download {url} ({exc}); {placement_hint(nclass, dest_dir)}"
        ) from None
    except OSError as exc:
        raise WeightsError(f"cannot write {target}: {exc.strerror or exc}") from None
    stat = target.stat()
    _sha256_cache[(str(target.resolve()), stat.st_size, stat.st_mtime_ns)] = digest
    return target


def download(url: str, out_path: Path, timeout: float, progress: bool, label: str) -> str:
    """Stream `url` into `out_path`, hashing as it goes; returns the hex SHA-256.
    Network failures raise DownloadFailed; failures to write stay OSError."""
    hasher = hashlib.sha256()
    with open_url(url, timeout) as response, open(out_path, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(
            total=total,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=label,
            file=sys.stderr,
            disable=not (progress and sys.stderr.isatty()),
        ) as bar:
            received = 0
            while chunk := read_chunk(response, timeout):
                hasher.update(chunk)
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if total is not None and received != total:
        raise DownloadFailed(f"the connection ended after {received} of {total} bytes")
    return hasher.hexdigest()


def open_url(url: str, timeout: float) -> http.client.HTTPResponse:
    try:
        request = urllib.request.Request(url, headers={"User-Agent": f"emonet-cli/{__version__}"})
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        raise DownloadFailed(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise DownloadFailed(network_reason(exc.reason, timeout)) from None
    except (OSError, http.client.HTTPException) as exc:
        raise DownloadFailed(network_reason(exc, timeout)) from None
    except ValueError as exc:  # a malformed URL
        raise DownloadFailed(str(exc)) from None


def read_chunk(response: http.client.HTTPResponse, timeout: float) -> bytes:
    try:
        return response.read(CHUNK_SIZE)
    except (OSError, http.client.HTTPException) as exc:  # e.g. the server hung up mid-body
        raise DownloadFailed(network_reason(exc, timeout)) from None


def network_reason(reason: object, timeout: float) -> str:
    if isinstance(reason, socket.timeout):
        return f"no answer within {timeout:g} s"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__
