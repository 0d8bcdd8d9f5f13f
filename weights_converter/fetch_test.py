"""Downloads against a local HTTP server: resume, restart, sha256, atomic rename, offline."""

import hashlib
import http.server
import os
import threading

import pytest

from tfmedbench.errors import UserError
from weights_converter import api, fetch, registry
from weights_converter.testing import writers
from weights_converter.testing.harness import DEPTHS, WIDTH

PAYLOAD = os.urandom(3 * 2**20 + 12345)
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    ranges = []
    flaky_left = 1
    files = {}

    def log_message(self, *args):
        pass

    def do_GET(self):
        body = self.files.get(self.path.split("?")[0], PAYLOAD)
        rng = self.headers.get("Range")
        Handler.ranges.append((self.path, rng))
        if self._hostile(body, rng):
            return
        if rng and not self.path.startswith("/norange"):
            start = int(rng.split("=")[1].rstrip("-"))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            body = body[start:]
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.path.startswith("/flaky") and Handler.flaky_left:
            Handler.flaky_left -= 1
            self.wfile.write(body[: len(body) // 3])  # connection drops mid-file
            return
        self.wfile.write(body)


    def _hostile(self, body, rng):
        """Misbehaving servers: no Content-Length, an HTML page, 206 replies for another range."""
        if self.path.startswith("/nolength"):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)  # HTTP/1.0: the body ends when the connection closes
        elif self.path.startswith("/html"):
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(b"<!DOCTYPE html><html>Sign in</html>")
        elif rng and self.path.startswith(("/bad206", "/norange206")):
            self.send_response(206)  # claims a partial reply, but sends the file from byte 0
            if self.path.startswith("/bad206"):
                self.send_header("Content-Range", f"bytes 0-{len(body) - 1}/{len(body)}")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            return False
        return True


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_download_verifies_and_renames_atomically(server, tmp_path):
    dest = str(tmp_path / "f.bin")
    assert fetch.download(f"{server}/f.bin", dest, sha256=SHA, progress=False) == SHA
    assert open(dest, "rb").read() == PAYLOAD and not os.path.exists(dest + ".part")


def test_truncated_download_keeps_partial_then_resumes(server, tmp_path):
    dest = str(tmp_path / "flaky.bin")
    with pytest.raises(fetch.DownloadError, match="run again to resume"):
        fetch.download(f"{server}/flaky.bin", dest, sha256=SHA, progress=False)
    assert not os.path.exists(dest) and os.path.getsize(dest + ".part") == len(PAYLOAD) // 3
    fetch.download(f"{server}/flaky.bin", dest, sha256=SHA, progress=False)
    assert ("/flaky.bin", f"bytes={len(PAYLOAD) // 3}-") in Handler.ranges
    assert open(dest, "rb").read() == PAYLOAD


def test_restarts_cleanly_when_server_ignores_range(server, tmp_path):
    dest = str(tmp_path / "n.bin")
    open(dest + ".part", "wb").write(b"stale bytes from another file")
    fetch.download(f"{server}/norange.bin", dest, sha256=SHA, progress=False)
    assert open(dest, "rb").read() == PAYLOAD


def test_sha_mismatch_leaves_no_file(server, tmp_path):
    dest = str(tmp_path / "bad.bin")
    with pytest.raises(fetch.DownloadError, match="does not match"):
        fetch.download(f"{server}/f.bin", dest, sha256="0" * 64, progress=False)
    assert not os.path.exists(dest) and not os.path.exists(dest + ".part")
    with pytest.raises(fetch.DownloadError):  # torchvision-style published prefix
        fetch.download(f"{server}/f.bin", dest, sha256_prefix="19c8e357", progress=False)
    assert os.listdir(tmp_path) == []


def test_offline_fetch_says_which_file_goes_where(tmp_path):
    with pytest.raises(UserError) as err:
        api.fetch_name("moco-v2", url_override=lambda spec: "http://127.0.0.1:9/x", progress=False)
    message = str(err.value)
    assert "cannot download" in message and "moco_v2_800ep_pretrain.pth.tar" in message
    assert os.path.join(api.home(), "downloads", "moco-v2") in message


def test_resolve_without_fetch_names_file_and_folder():
    with pytest.raises(UserError, match=r"place it in .*downloads/swav/.*swav_800ep_pretrain\.pth\.tar|"
                                        r"swav_800ep_pretrain\.pth\.tar.*downloads/swav"):
        api.resolve_name("swav")
    with pytest.raises(UserError, match="Box folder"):
        api.resolve_name("inat2021")
    assert api.resolve_name("random") is None


def test_fetch_downloads_converts_records_digest_and_caches(server, reference, tmp_path):
    src = str(tmp_path / "moco.pth.tar")
    writers.write_moco(reference, src)
    Handler.files["/moco.pth.tar"] = open(src, "rb").read()
    out = api.fetch_name("moco-v2", url_override=lambda spec: f"{server}/moco.pth.tar",
                         progress=False, depths=DEPTHS, width=WIDTH)
    assert out == api.converted_path("moco-v2") and os.path.exists(out + ".json")
    sums = open(os.path.join(api.downloads_dir("moco-v2"), "SHA256SUMS")).read()
    assert hashlib.sha256(Handler.files["/moco.pth.tar"]).hexdigest() in sums
    # cached now: resolving needs neither the network nor torch
    assert api.resolve_name("mocov2") == out
    # a changed upstream file is caught against the digest recorded on first download
    Handler.files["/moco.pth.tar"] += b"tampered"
    with pytest.raises(fetch.DownloadError, match="does not match"):
        api.fetch_name("moco-v2", force=True, url_override=lambda spec: f"{server}/moco.pth.tar",
                       progress=False, depths=DEPTHS, width=WIDTH)


def test_placed_file_is_converted_on_resolve(reference):
    folder = api.downloads_dir("barlow")
    os.makedirs(folder)
    writers.write_barlow(reference, os.path.join(folder, "resnet50.pth"))
    out = api.resolve_name("barlow-twins", depths=DEPTHS, width=WIDTH)
    assert out.endswith("barlow.weights.h5") and os.path.exists(out)


def test_registry_is_complete():
    names = {r.name for r in registry.RECORDS}
    assert names == {
        "random", "imagenet", "inat2021", "inat2021-mini", "insdis", "moco-v1", "moco-v2", "pcl-v1",
        "pcl-v2", "pirl", "simclr-v1", "simclr-v2", "sela-v2", "infomin", "byol", "deepcluster-v2",
        "swav", "barlow", "chexpert", "chestxray14", "imagenet-chexpert", "imagenet-chestxray14",
    }
    assert registry.lookup("barlowtwins").name == registry.lookup("Barlow_Twins").name == "barlow"
    for record in registry.RECORDS:
        assert record.citation and record.normalization["mean"] == registry.IMAGENET_MEAN
        for spec in record.files:
            assert spec.url.startswith("https://") and spec.filename
            assert spec.sha256 is None  # none published; recorded on first download
    assert "WITHOUT mean/std" in registry.lookup("simclr-v1").normalization["pretraining"]
    with pytest.raises(UserError, match="weights list"):
        registry.lookup("moco-v9")


def test_register_local_weights(tmp_path):
    path = tmp_path / "mine.weights.h5"
    path.write_bytes(b"h5")
    assert api.register_local("My-CXR", str(path)) == "my-cxr"
    assert api.resolve_name("my-cxr") == str(path)
    with pytest.raises(UserError, match="built-in"):
        api.register_local("moco-v2", str(path))
    with pytest.raises(UserError, match="not an existing .weights.h5"):
        api.register_local("other", str(tmp_path / "x.pth"))
    path.unlink()
    with pytest.raises(UserError, match="no longer exists"):
        api.resolve_name("my-cxr")


def test_body_without_length_is_cut_at_the_cap_and_deleted(server, tmp_path):
    dest = str(tmp_path / "n.bin")
    with pytest.raises(fetch.DownloadError, match=r"more than 1,048,576 bytes and still going"):
        fetch.download(f"{server}/nolength.bin", dest, progress=False, max_bytes=1 << 20)
    assert os.listdir(tmp_path) == []
    assert fetch.download(f"{server}/nolength.bin", dest, sha256=SHA, progress=False) == SHA  # default cap


def test_content_length_above_the_cap_is_refused_before_reading(server, tmp_path):
    dest = str(tmp_path / "f.bin")
    open(dest + ".part", "wb").write(PAYLOAD[:1000])  # a partial file of a wrong, oversized file
    with pytest.raises(fetch.DownloadError, match=rf"offers {len(PAYLOAD):,} bytes, more than the 1,048,576"):
        fetch.download(f"{server}/f.bin", dest, progress=False, max_bytes=1 << 20)
    assert os.listdir(tmp_path) == []


def test_pinned_size_must_match(server, tmp_path):
    dest = str(tmp_path / "f.bin")
    with pytest.raises(fetch.DownloadError, match=rf"offers {len(PAYLOAD):,} bytes, but the published file has {len(PAYLOAD) + 1:,}"):
        fetch.download(f"{server}/f.bin", dest, progress=False, size=len(PAYLOAD) + 1)
    with pytest.raises(fetch.DownloadError, match=rf"more than {len(PAYLOAD) - 1:,} bytes"):  # no length: cut at the pin
        fetch.download(f"{server}/nolength.bin", dest, progress=False, size=len(PAYLOAD) - 1)
    assert os.listdir(tmp_path) == []
    assert fetch.download(f"{server}/f.bin", dest, progress=False, size=len(PAYLOAD)) == SHA


def test_html_page_is_refused(server, tmp_path):
    with pytest.raises(fetch.DownloadError, match="an HTML page, not the file"):
        fetch.download(f"{server}/html/resnet50.pth", str(tmp_path / "r.pth"), progress=False)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("path", ["/bad206.bin", "/norange206.bin"])
def test_206_for_another_range_restarts_from_zero(server, tmp_path, path):
    """Appending a 206 that does not start at the .part size would corrupt the file."""
    dest = str(tmp_path / "r.bin")
    open(dest + ".part", "wb").write(PAYLOAD[:5000])
    Handler.ranges.clear()
    assert fetch.download(f"{server}{path}", dest, sha256=SHA, progress=False) == SHA
    assert open(dest, "rb").read() == PAYLOAD
    assert Handler.ranges == [(path, "bytes=5000-"), (path, None)]  # refused the 206, asked again


def test_registry_bounds_every_download():
    imagenet = registry.lookup("imagenet")
    assert imagenet.files[0].size == 102_502_400  # published (the 2017 torchvision file)
    assert registry.size_limit(imagenet, imagenet.files[0]) == 102_502_400
    for record in registry.RECORDS:
        for spec in record.files + record.alternatives:
            assert 90 << 20 <= registry.size_limit(record, spec) <= fetch.MAX_DOWNLOAD_BYTES, record.name
