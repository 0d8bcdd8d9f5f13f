"""Resumable, verified, atomic, size-capped downloads (standard library only).

The bytes go to DEST.part; an interrupted download resumes with an HTTP Range request. A 206
reply is used only when its Content-Range starts exactly at the size of DEST.part; otherwise
(server ignored Range, or answered a different range) the download restarts from zero. The
sha256 of the finished file is checked before DEST.part is renamed to DEST, so DEST only ever
exists complete and verified.

Sizes are capped before and while reading: by the size the registry pins (exact), else by the
upper bound it gives for the format, else MAX_DOWNLOAD_BYTES; a Content-Length above the cap is
refused before a byte is read, and a body without Content-Length is cut off at the cap. An HTML
page (a login or consent page served instead of the file) is refused. DEST.part is kept when a
transfer was interrupted or the host is unreachable or answers an HTTP error (the next run
resumes it); a failure that shows the bytes are wrong (too large, HTML, size or digest
mismatch, inconsistent ranges) removes it.
"""

from __future__ import annotations

import os
import re
import sys
import urllib.error
import urllib.request

from tfmedbench.errors import UserError
from tfmedbench.fileutil import sha256_file

CHUNK = 1 << 20
MAX_DOWNLOAD_BYTES = 2 << 30  # no ResNet-50 release is larger (see registry.FORMAT_MAX_BYTES)


class DownloadError(UserError):
    """The download failed (offline, HTTP error, digest mismatch, too large)."""


class OfflineError(DownloadError):
    """The host could not be reached."""


class InterruptedDownload(DownloadError):
    """The connection closed mid-file; DEST.part is kept and the next run resumes it."""


class _Restart(Exception):
    """The partial file cannot be resumed: start again from zero."""


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


def _remove(path):
    if os.path.exists(path):
        os.remove(path)


def _content_range_start(response):
    """Start of a 206's `Content-Range: bytes START-END/TOTAL`, or None if absent/garbled."""
    found = re.fullmatch(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*", response.headers.get("Content-Range") or "")
    return int(found.group(1)) if found else None


def _expected_total(url, response, offset, size, limit):
    """Bytes the finished file will have (None if the server does not say); checks the caps."""
    length = response.headers.get("Content-Length")
    total = offset + int(length) if length and length.isdigit() else None
    if size is not None and total is not None and total != size:
        raise DownloadError(f"{url}: the server offers {total:,} bytes, but the published file has "
                            f"{size:,}; not downloading a different file")
    if total is not None and total > limit:
        raise DownloadError(f"{url}: the server offers {total:,} bytes, more than the {limit:,} this "
                            "file can be; refusing to download it")
    return total


def _fetch(url, dest, part, size, limit, progress, timeout):
    """One request; raises _Restart when DEST.part must be discarded and fetched from zero."""
    offset = os.path.getsize(part) if os.path.exists(part) else 0
    if offset > limit:
        raise _Restart()
    request = urllib.request.Request(direct_url(url), headers={"User-Agent": "tfmedbench"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:
            raise _Restart() from None  # our partial file is not a prefix of theirs
        raise
    with response:
        if (response.headers.get("Content-Type") or "").lower().startswith("text/html"):
            _remove(part)
            raise DownloadError(f"{url}: the server sent an HTML page, not the file (a login, consent "
                                "or error page); download it in a browser and place it by hand")
        resumed = response.status == 206
        if resumed and _content_range_start(response) != offset:
            raise _Restart()  # a 206 for another range than the one we hold
        if not resumed:
            offset = 0  # 200: the whole file (server ignored Range)
        total = _expected_total(url, response, offset, size, limit)
        _stream(url, response, part, "ab" if resumed else "wb", offset, total, limit, progress, dest)


def _stream(url, response, part, mode, done, total, limit, progress, dest):
    stream = sys.stderr if progress else None
    with open(part, mode) as out:
        for chunk in iter(lambda: response.read(CHUNK), b""):
            done += len(chunk)
            if done > limit:
                out.close()
                _remove(part)
                raise DownloadError(f"{url}: more than {limit:,} bytes and still going; stopped and "
                                    "deleted the partial download (not the published file)")
            out.write(chunk)
            _progress(done, total, os.path.basename(dest), stream)
    if stream:
        stream.write("\n")
    if total is not None and done != total:
        raise InterruptedDownload(f"{url}: connection closed at {done} of {total} bytes; run again to resume")


def download(url, dest, sha256=None, sha256_prefix=None, progress=True, timeout=60, size=None,
             max_bytes=None):
    """Download `url` to `dest`; returns the sha256 hex digest of the verified file.

    `size`: the exact published size, if known; `max_bytes`: an upper bound otherwise
    (default MAX_DOWNLOAD_BYTES).
    """
    part = dest + ".part"
    limit = size if size is not None else (max_bytes or MAX_DOWNLOAD_BYTES)
    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    try:
        try:
            _fetch(url, dest, part, size, limit, progress, timeout)
        except _Restart:
            _remove(part)
            _fetch(url, dest, part, size, limit, progress, timeout)
    except _Restart:
        _remove(part)
        raise DownloadError(f"{url}: the server does not serve the file consistently (bad range "
                            "replies); deleted the partial download, try again later") from None
    except InterruptedDownload:
        raise  # DEST.part stays: the next run resumes it
    except DownloadError:
        _remove(part)  # wrong content (too large, an HTML page, a size mismatch): never resume it
        raise
    except urllib.error.HTTPError as err:
        raise DownloadError(f"{url}: HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise OfflineError(f"{url}: cannot download ({reason})") from None
    return _verify(url, dest, part, sha256 or sha256_prefix, size)


def _verify(url, dest, part, expected, size):
    have = os.path.getsize(part)
    if size is not None and have != size:
        _remove(part)
        raise DownloadError(f"{url}: got {have:,} bytes, the published file has {size:,}; deleted it")
    digest = sha256_of(part)
    if expected and not digest.startswith(expected.lower()):
        _remove(part)
        raise DownloadError(
            f"{url}: sha256 {digest} does not match the expected {expected}; the download was "
            "deleted (a changed or corrupted file). Retry, or report it if it persists."
        )
    os.replace(part, dest)
    return digest
