"""Resumable, verified, atomic downloads (standard library only).

The bytes go to DEST.part; an interrupted download resumes with an HTTP Range request (or
restarts from zero when the server ignores Range); the sha256 of the finished file is checked
before DEST.part is renamed to DEST, so DEST only ever exists complete and verified. A digest
mismatch deletes the partial file.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

from tfmedbench.errors import UserError
from tfmedbench.fileutil import sha256_file

CHUNK = 1 << 20


class DownloadError(UserError):
    """The download failed (offline, HTTP error, digest mismatch)."""


class OfflineError(DownloadError):
    """The host could not be reached."""


def direct_url(url):
    """Published links that need a tweak to serve bytes instead of a web page."""
    if "dropbox.com" in url and "dl=1" not in url:
        return url + ("&" if "?" in url else "?") + "dl=1"
    return url.replace("https://storage.cloud.google.com/", "https://storage.googleapis.com/")


sha256_of = sha256_file


def _progress(done, total, label, stream):
    if stream is None:
        return
    if total:
        width = 30
        filled = int(width * done / total)
        stream.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done / 2**20:7.1f}/{total / 2**20:.1f} MiB")
    else:
        stream.write(f"\r{label} {done / 2**20:7.1f} MiB")
    stream.flush()


def download(url, dest, sha256=None, sha256_prefix=None, progress=True, timeout=60):
    """Download `url` to `dest`; returns the sha256 hex digest of the verified file."""
    part = dest + ".part"
    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    offset = os.path.getsize(part) if os.path.exists(part) else 0
    request = urllib.request.Request(direct_url(url), headers={"User-Agent": "tfmedbench"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    stream = sys.stderr if progress else None
    try:
        try:
            response = urllib.request.urlopen(request, timeout=timeout)
        except urllib.error.HTTPError as err:
            if err.code != 416 or not offset:
                raise
            os.remove(part)  # our partial file is not a prefix of theirs: start again
            return download(url, dest, sha256, sha256_prefix, progress, timeout)
        with response:
            resumed = response.status == 206
            if offset and not resumed:
                offset = 0  # server ignored Range: restart cleanly
            length = response.headers.get("Content-Length")
            total = offset + int(length) if length else None
            done = offset
            with open(part, "ab" if resumed else "wb") as out:
                for chunk in iter(lambda: response.read(CHUNK), b""):
                    out.write(chunk)
                    done += len(chunk)
                    _progress(done, total, os.path.basename(dest), stream)
            if stream:
                stream.write("\n")
            if total is not None and done != total:
                raise DownloadError(f"{url}: connection closed at {done} of {total} bytes; run again to resume")
    except urllib.error.HTTPError as err:
        raise DownloadError(f"{url}: HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as err:
        if isinstance(err, DownloadError):
            raise
        reason = getattr(err, "reason", err)
        raise OfflineError(f"{url}: cannot download ({reason})") from None
    digest = sha256_of(part)
    expected = sha256 or sha256_prefix
    if expected and not digest.startswith(expected.lower()):
        os.remove(part)
        raise DownloadError(
            f"{url}: sha256 {digest} does not match the expected {expected}; the download was "
            "deleted (a changed or corrupted file). Retry, or report it if it persists."
        )
    os.replace(part, dest)
    return digest
