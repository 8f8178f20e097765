"""The command line's and the gateway client's parts that need no stack: arguments, exit codes,
texts, and downloads that must never leave a corrupt file (served by a loopback HTTP server)."""

from __future__ import annotations

import doctest
import hashlib
import http.server
import importlib
import threading

import pytest

from neuromesh.gateway_cli import EXIT_CODES, UsageError, exit_code_of, job_text, parse_params
from neuromesh.sdk.gateway import GatewayClient, GatewayError, GatewayUnreachable, Job


@pytest.mark.parametrize("name", ["neuromesh.gateway_cli", "neuromesh.sdk.gateway"])
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_params_nest_dotted_names_and_later_values_win(tmp_path):
    base = tmp_path / "params.json"
    base.write_text('{"thresholds": [0.5], "analysis": {"seed": 1, "n_random": 3}}')
    params = parse_params(["analysis.n_random=9", "threshold=0.5", "name=\"a b\""], str(base))
    assert params == {"thresholds": [0.5], "analysis": {"seed": 1, "n_random": 9}, "threshold": 0.5, "name": "a b"}


@pytest.mark.parametrize("assignments, file_text, message", [
    (["=3"], None, "is not NAME=VALUE"),
    (["a=1", "a.b=2"], None, "a is set to a value, not an object"),
    ([], "[1, 2]", "must hold a JSON object"),
    ([], "{not json", "is not JSON"),
])
def test_bad_params_are_usage_errors(tmp_path, assignments, file_text, message):
    path = None
    if file_text is not None:
        path = tmp_path / "p.json"
        path.write_text(file_text)
    with pytest.raises(UsageError, match=message):
        parse_params(assignments, str(path) if path else None)


def test_exit_codes_are_distinct_and_gateway_errors_map_onto_them():
    assert len(EXIT_CODES) == len(set(EXIT_CODES.values())) == 7
    assert [exit_code_of(GatewayError(s, {})) for s in (400, 401, 403, 404, 409, 413, 422, 500, 503)] == \
        [2, 4, 4, 3, 2, 2, 2, 5, 5]


def test_a_failed_job_is_told_by_its_first_failing_step():
    job = {"id": "j", "state": "failed", "progress": 0.25, "steps": [
        {"id": "a", "service": "simulation", "method": "Simulate", "state": "succeeded", "progress": 1.0,
         "reused": True, "outputs": {"figure": {"key": "fig.png", "uri": "s3://b/fig.png", "sha256": "0" * 64,
                                                "media_type": "image/png", "size_bytes": 10}}},
        {"id": "b", "service": "reduction", "method": "Fit", "state": "failed", "progress": 0.0, "reused": False,
         "error": {"code": "INVALID_ARGUMENT", "message": "activity has NaN at row 3"}, "outputs": {}}]}
    typed = Job.from_json(job)
    assert typed.failure == "step b (reduction.Fit): INVALID_ARGUMENT: activity has NaN at row 3"
    assert typed.output("a/figure").uri == "s3://b/fig.png" and typed.step("a").reused
    with pytest.raises(KeyError, match="its outputs: none yet"):
        typed.output("b/figure")
    text = job_text(job)
    assert "(reused)" in text and "a/figure  s3://b/fig.png" in text and "25.0%" in text.splitlines()[0]
    assert Job.from_json({"id": "j", "state": "cancelled", "steps": []}).failure == "the job is cancelled"


class _Server(http.server.ThreadingHTTPServer):
    body = b""
    status = 200


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (the standard library's name)
        self.send_response(self.server.status)
        self.send_header("Content-Length", str(len(self.server.body)))
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.server.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = _Server(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_download_to_checks_the_digest_and_leaves_nothing_on_a_mismatch(server, tmp_path):
    server.body = b"the figure's bytes"
    url = f"http://127.0.0.1:{server.server_address[1]}/figure.png"
    gw = GatewayClient(url, "token")
    good = {"key": "figure.png", "download_url": url, "sha256": hashlib.sha256(server.body).hexdigest()}
    assert gw.download_to(good, tmp_path / "figure.png").read_bytes() == server.body

    (tmp_path / "kept.png").write_bytes(b"an earlier download")
    bad = {**good, "sha256": "0" * 64}
    with pytest.raises(ValueError, match="does not have the recorded sha256"):
        gw.download_to(bad, tmp_path / "kept.png")
    assert (tmp_path / "kept.png").read_bytes() == b"an earlier download"   # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figure.png", "kept.png"]  # no partial file left


def test_error_answers_and_silence_become_the_clients_errors(server):
    server.status, server.body = 404, b'{"error": {"reason": "JOB_NOT_FOUND", "message": "job x does not exist"}}'
    gw = GatewayClient(f"http://127.0.0.1:{server.server_address[1]}", "token")
    with pytest.raises(GatewayError) as err:
        gw.job("x")
    assert (err.value.status, err.value.reason, err.value.message) == (404, "JOB_NOT_FOUND", "job x does not exist")
    server.status, server.body = 502, b"<html>bad gateway</html>"
    with pytest.raises(GatewayError, match="bad gateway") as err:
        gw.job("x")
    assert err.value.status == 502
    with pytest.raises(GatewayUnreachable, match="127.0.0.1:9"):
        GatewayClient("http://127.0.0.1:9", "token", timeout_s=2).jobs()


def test_an_https_gateway_signed_by_a_private_ca_needs_its_ca_file(tmp_path):
    import ssl
    import subprocess

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.body = b'{"jobs": [], "next_cursor": null}'
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    srv.socket = context.wrap_socket(srv.socket, server_side=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"https://127.0.0.1:{srv.server_address[1]}"
        with pytest.raises(GatewayUnreachable, match="CERTIFICATE_VERIFY_FAILED"):
            GatewayClient(url, "token", timeout_s=5).jobs()
        assert GatewayClient(url, "token", timeout_s=5, ca_file=cert).jobs() == {"jobs": [], "next_cursor": None}
    finally:
        srv.shutdown()
        srv.server_close()
