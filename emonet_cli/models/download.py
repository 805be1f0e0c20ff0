"""Downloading a published weights file: streamed, hashed as it arrives, kept only once whole
and verified, with network failures reduced to one short reason (no torch needed)."""

from __future__ import annotations

import hashlib
import http.client
import logging
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from emonet_cli import __version__
from emonet_cli.errors import WeightsError
from emonet_cli.formats.fileio import atomic_path

log = logging.getLogger("emonet")

CHUNK_SIZE = 1 << 20


class DownloadFailed(Exception):
    """A network failure, with a short reason for the message."""


def fetch_file(
    url: str, target: Path, sha256: str, hint: str, progress: bool = True, timeout: float = 30.0
) -> str:
    """Download `url` to `target` and check its SHA-256; returns it. The file appears only once
    complete and verified; nothing is left otherwise. `hint` ends the message of a network
    failure: what the user can do instead."""
    log.info("downloading %s to %s", url, target)
    try:
        with atomic_path(target) as tmp:
            digest = download(url, tmp, timeout, progress, target.name)
            if digest != sha256:
                raise WeightsError(
                    f"the file downloaded from {url} has SHA-256 {digest}, not the expected "
                    f"{sha256}; it was not kept (a proxy or mirror may serve another file)"
                )
    except DownloadFailed as exc:
        raise WeightsError(f"could not download {url} ({exc}); {hint}") from None
    except OSError as exc:
        raise WeightsError(f"cannot write {target}: {exc.strerror or exc}") from None
    return digest


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
