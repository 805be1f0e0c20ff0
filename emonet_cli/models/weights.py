"""Model weights: where a family's file is looked for, and how a published one is downloaded
and verified (loading it into a network is the family's job, so that this module needs no
torch; the download itself is `download.py`'s).

Every family's file is found the same way (`WeightsLookup` says the file, by expression
classes, and the variable), in this order:
  1. an explicit `--weights` file (or folder holding the file),
  2. the family's variable, e.g. `$EMONET_WEIGHTS` (file or folder),
  3. the checkout's `weights/` folder (source checkouts only),
  4. the user cache folder (see `cache_dir`), where downloads go.
The functions here look for EmoNet's file unless given another family's `lookup` (the
registry's `ModelFamily.lookup`).
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path

from emonet_cli.errors import WeightsError
from emonet_cli.models.download import CHUNK_SIZE, fetch_file
from emonet_cli.models.published import EMONET_LOOKUP, PublishedWeights, WeightsLookup
from emonet_cli.models.published import PUBLISHED as PUBLISHED  # its importers' old home

log = logging.getLogger("emonet")

CACHE_ENV = "EMONET_CACHE"
# Only a source checkout has this folder; an installed package has no `weights/` beside it.
CHECKOUT_WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "weights"


def expected_weights(nclass: int, lookup: WeightsLookup = EMONET_LOOKUP) -> PublishedWeights:
    """The published file for `nclass`, with the URL and SHA-256 overrides of the environment
    applied (for EmoNet `EMONET_WEIGHTS_URL`, `EMONET_WEIGHTS_SHA256_5`, `..._8`)."""
    if nclass not in lookup.files:
        choices = tuple(lookup.files)
        raise ValueError(f"nclass of {lookup.family} must be one of {choices}, not {nclass}")
    expected = lookup.files[nclass]
    url_template = os.environ.get(lookup.url_env)
    if url_template:
        # A family with a file per class count needs the count in the URL to tell them apart.
        if lookup.several and "{nclass}" not in url_template:
            raise WeightsError(f"{lookup.url_env} must contain {{nclass}}, got {url_template!r}")
        expected = replace(expected, url=url_template.replace("{nclass}", str(nclass)))
    sha_name = lookup.sha256_env(nclass)
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
    --weights or the family's variable): a named file must exist, a named folder is only
    searched. `path` is the file looked for there, or the named folder itself when it holds
    the family's `folder_files` instead."""

    source: str
    path: Path
    named: Path | None = None

    @property
    def is_named_file(self) -> bool:
        return self.named is not None and not self.named.is_dir()

    @property
    def is_folder(self) -> bool:
        return self.path == self.named and self.path.is_dir()

    @property
    def holds_weights(self) -> bool:
        return self.path.is_file() or self.is_folder


def named_candidate(
    source: str, named: Path, filename: str, folder_files: tuple[str, ...] = ()
) -> Candidate:
    if not named.is_dir():
        return Candidate(source, named, named)
    path = named / filename
    if not path.is_file() and any((named / name).is_file() for name in folder_files):
        path = named
    return Candidate(source, path, named)


def candidates(
    nclass: int, weights: str | Path | None = None, lookup: WeightsLookup = EMONET_LOOKUP
) -> list[Candidate]:
    """The places looked in for the `nclass`-class file, in resolution order."""
    filename = expected_weights(nclass, lookup).filename
    found = []
    named = [("--weights", weights), (lookup.env, os.environ.get(lookup.env) or None)]
    for source, path in named:
        if path is not None:
            found.append(
                named_candidate(source, Path(path).expanduser(), filename, lookup.folder_files)
            )
    checkout = checkout_weights_dir()
    if checkout is not None:
        found.append(Candidate("checkout", checkout / filename))
    found.append(Candidate("cache", cache_dir() / filename))
    return found


def find_candidate(
    nclass: int, weights: str | Path | None = None, lookup: WeightsLookup = EMONET_LOOKUP
) -> Candidate | None:
    for candidate in candidates(nclass, weights, lookup):
        if candidate.holds_weights:
            return candidate
        if candidate.named is not None and not candidate.named.exists():
            raise WeightsError(f"{candidate.source}: {candidate.named} does not exist")
        if candidate.is_named_file:
            raise WeightsError(f"{candidate.source}: {candidate.named} is not a regular file")
    return None


def find_weights(
    nclass: int, weights: str | Path | None = None, lookup: WeightsLookup = EMONET_LOOKUP
) -> Path | None:
    """The file that would be used for the `nclass`-class model, or None if there is none.
    A `weights` path or the family's variable naming nothing that exists is a WeightsError."""
    found = find_candidate(nclass, weights, lookup)
    return found.path if found is not None else None


def placement_hint(
    nclass: int, folder: Path | None = None, lookup: WeightsLookup = EMONET_LOOKUP
) -> str:
    expected = expected_weights(nclass, lookup)
    return (
        f"place {expected.filename} (SHA-256 {expected.sha256}) in {folder or cache_dir()}, "
        f"or set {lookup.env} or pass --weights to use a file elsewhere"
    )


def weights_not_found(
    nclass: int,
    weights: str | Path | None = None,
    why: str = "",
    lookup: WeightsLookup = EMONET_LOOKUP,
) -> WeightsError:
    """The one-line error for weights found nowhere: where they were looked for, and how to
    put them in place (`why` says why they were not downloaded instead)."""
    looked_in = ", ".join(str(c.path.parent) for c in candidates(nclass, weights, lookup))
    expected = expected_weights(nclass, lookup)
    where = f"no {lookup.subject(nclass)} in {looked_in}{' ' + why if why else ''}"
    if not expected.url:
        return WeightsError(f"{where}: {lookup.how_to_get}")
    return WeightsError(
        f"{where}: run `{lookup.fetch_command(nclass)}`, or download {expected.url} and "
        f"{placement_hint(nclass, lookup=lookup)}"
    )


def resolve_weights(
    nclass: int,
    weights: str | Path | None = None,
    offline: bool = False,
    progress: bool = True,
    lookup: WeightsLookup = EMONET_LOOKUP,
) -> Path:
    """The file to use for the `nclass`-class model; downloaded to the cache if found nowhere,
    unless `offline`."""
    found = find_weights(nclass, weights, lookup)
    if found is not None:
        return found
    if offline:
        raise weights_not_found(nclass, weights, "and --offline forbids downloading them", lookup)
    return fetch_weights(nclass, progress=progress, lookup=lookup)


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
    checkable: bool = True  # False: no published SHA-256 to check it against (made here)
    folder: bool = False  # a named folder holding the family's folder_files

    @property
    def verified(self) -> bool:
        return self.published_as == self.nclass

    @property
    def verdict(self) -> str:
        """'missing', or the size and whether the file is the published one."""
        if self.folder:
            return "folder of the published files"
        if self.size is None:
            return "missing"
        size = f"{self.size / 1e6:.1f} MB"
        if not self.checkable:
            return f"{size}  present, SHA-256 {self.sha256}"
        if self.verified:
            return f"{size}  verified"
        if self.published_as is not None:
            return f"{size}  not the published file (it is the {self.published_as}-class one)"
        return f"{size}  not the published file"


def weights_inventory(nclass: int, lookup: WeightsLookup = EMONET_LOOKUP) -> list[WeightsStatus]:
    """Every place the `nclass`-class file is looked for, in resolution order, with what is
    there. Unlike `find_weights`, a named path that does not exist is listed, not an error."""
    known = {expected_weights(n, lookup).sha256: n for n in lookup.files}
    known.pop("", None)
    checkable = bool(expected_weights(nclass, lookup).sha256)
    rows = []
    selected_seen = False
    for candidate in candidates(nclass, lookup=lookup):
        if candidate.path.is_file():
            sha256 = sha256_file(candidate.path)
            size = candidate.path.stat().st_size
        else:
            sha256 = size = None
        selected = candidate.holds_weights and not selected_seen
        selected_seen = selected_seen or selected
        published_as = known.get(sha256) if sha256 else None
        rows.append(
            WeightsStatus(
                nclass,
                candidate.source,
                candidate.path,
                size,
                sha256,
                published_as,
                selected,
                checkable,
                candidate.is_folder,
            )  # fmt: skip
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


def remember_sha256(path: Path, digest: str) -> None:
    """Record the SHA-256 of a file just written, so that it is not read again to hash it."""
    stat = path.stat()
    _sha256_cache[(str(path.resolve()), stat.st_size, stat.st_mtime_ns)] = digest


def hash_contents(path: Path) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_SIZE):
            hasher.update(chunk)
    return hasher.hexdigest()


def fetch_weights(
    nclass: int,
    dest_dir: Path | None = None,
    url: str | None = None,
    sha256: str | None = None,
    progress: bool = True,
    timeout: float = 30.0,
    lookup: WeightsLookup = EMONET_LOOKUP,
) -> Path:
    """Download the `nclass`-class weights into `dest_dir` (default: the cache folder) and
    check their SHA-256. The file appears only once complete and verified; a verified file
    already there is kept without downloading. A family whose file has no URL is an error
    saying how to get it."""
    expected = expected_weights(nclass, lookup)
    url = url or expected.url
    if not url:
        raise WeightsError(f"the {lookup.label} weights cannot be downloaded: {lookup.how_to_get}")
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
    hint = placement_hint(nclass, dest_dir, lookup)
    digest = fetch_file(url, target, sha256, hint, progress, timeout)
    remember_sha256(target, digest)
    return target
