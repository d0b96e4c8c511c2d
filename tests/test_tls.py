"""TLS is verified: a certificate the machine does not trust is refused, a configured CA is used."""

from __future__ import annotations

import json
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from connector.errors import MoodleError, MoodleUnavailable
from connector.moodle.api import MoodleApi
from connector.moodle.client import MoodleClient
from connector.moodle.settings import ClientSettings
from tests.helpers import QuietHandler

SITE_INFO = {
    "sitename": "TLS",
    "username": "ws",
    "userid": 5,
    "siteurl": "https://127.0.0.1",
    "lang": "en",
    "release": "4.1.10 (Build: 20240422)",
    "version": "2022112810",
    "functions": [],
}


class _Handler(QuietHandler):
    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps(SITE_INFO).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def https_site(tmp_path: Path, http_server: Callable[..., str]) -> tuple[str, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return http_server(_Handler, tls=context), cert


@pytest.mark.slow
def test_an_untrusted_certificate_is_refused_without_retrying(https_site: tuple[str, Path]) -> None:
    url, _ = https_site
    with MoodleClient(ClientSettings(url=url, token="secret-tls-token")) as client:
        with pytest.raises(MoodleError) as info:
            MoodleApi(client).site_info()
        assert client.calls_by_function()["core_webservice_get_site_info"] == 1
    assert not isinstance(info.value, MoodleUnavailable)
    assert "ca_bundle" in (info.value.hint or "") and "secret-tls-token" not in str(info.value)


@pytest.mark.slow
def test_the_configured_ca_bundle_is_trusted(https_site: tuple[str, Path]) -> None:
    url, cert = https_site
    with MoodleClient(ClientSettings(url=url, token="t", ca_bundle=str(cert))) as client:
        assert MoodleApi(client).site_info().sitename == "TLS"
