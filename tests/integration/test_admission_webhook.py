"""``s3csi webhook`` over real HTTPS (a CA made here), as the API server would call it.

The table of tests/admission_cases.py through the real server, patches applied with an independent RFC 6902
implementation (jsonpatch) and the result validated as a Pod against the Kubernetes schema; malformed
requests; TLS; the access log; SIGTERM; certificate rotation.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonpatch
import kubernetes_validate
import pytest
from aiohttp.test_utils import TestClient, TestServer
from cryptography import x509
from prometheus_client import generate_latest

from s3csi.admission.review import AdmissionRequest, AdmissionResponse
from s3csi.admission.server import make_app
from s3csi.metrics.webhook import WebhookMetrics
from tests.admission_cases import (
    FSGROUP_PATH,
    MUTATE_PATHS,
    NAMESPACE_CASES,
    PATH_FIELDS,
    POD_CASES,
    defaulted,
    namespace,
    pod,
)
from tests.admission_support import CertificateAuthority, WebhookProcess, admission_review, post
from tests.metrics_support import delta, get, parse, scrape, value
from tests.polling import wait_until

pytestmark = pytest.mark.integration

KUBERNETES_VERSION = kubernetes_validate.latest_version()


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority.create(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def webhook(tmp_path_factory: pytest.TempPathFactory, ca: CertificateAuthority) -> Iterator[WebhookProcess]:
    process = WebhookProcess(tmp_path_factory.mktemp("webhook"), ca)
    try:
        yield process
    finally:
        assert process.terminate() == 0, process.log()


def review_body(obj: object, kind: str = "Pod", **fields: Any) -> tuple[bytes, str]:
    review = admission_review(obj, kind=kind, **fields)
    return json.dumps(review).encode(), review["request"]["uid"]


def call(webhook: WebhookProcess, path: str, obj: object, kind: str = "Pod", **fields: Any) -> dict[str, Any]:
    body, uid = review_body(obj, kind, **fields)
    conn = webhook.connect()
    try:
        response: dict[str, Any] = post(conn, path, body).review()["response"]
    finally:
        conn.close()
    assert response["uid"] == uid
    return response


def decoded_patch(response: dict[str, Any]) -> list[dict[str, Any]]:
    if "patch" not in response:
        assert "patchType" not in response
        return []
    assert response["patchType"] == "JSONPatch"
    patch: list[dict[str, Any]] = json.loads(base64.b64decode(response["patch"], validate=True))
    return patch


@pytest.mark.parametrize("case", POD_CASES, ids=lambda c: c.name)
def test_pod_table_over_https(webhook: WebhookProcess, case: Any) -> None:
    for path in MUTATE_PATHS:
        response = call(webhook, path, case.pod)
        assert response["allowed"] is True and "warnings" not in response
        patch = decoded_patch(response)
        assert patch == case.patches[path], path
        admitted = jsonpatch.apply_patch(case.pod, patch)
        field, value = PATH_FIELDS[path]
        assert admitted == (defaulted(case.pod, **{field: value}) if patch else case.pod)
        kubernetes_validate.validate(admitted, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("case", NAMESPACE_CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("operation", ["CREATE", "UPDATE"])
def test_namespace_table_over_https(webhook: WebhookProcess, case: Any, operation: str) -> None:
    response = call(webhook, "/validate-namespaces", namespace(case.labels), "Namespace", operation=operation)
    assert response["allowed"] is (not case.violations)
    if case.violations:
        assert response["status"] == {"code": 422, "reason": "Invalid", "message": "; ".join(case.violations)}
        assert "patch" not in response


VALID, _ = review_body(pod())
NO_SPEC, _ = review_body({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}})
NO_OBJECT, _ = review_body(None)
UPDATE, _ = review_body(pod(), operation="UPDATE")
NAMESPACE_WITHOUT_METADATA, _ = review_body({"kind": "Namespace"}, "Namespace")
DEEP_OBJECT = VALID.replace(b'"spec": {', b'"spec": {"x": ' + b"[" * 5000 + b"]" * 5000 + b", ", 1)
GZIP_BOMB = gzip.compress(b"0" * 20_000_000, compresslevel=9)
HUGE_INTEGER = VALID.replace(b'"spec": {', b'"spec": {"x": ' + b"7" * 5000 + b", ", 1)


@pytest.mark.parametrize(
    ("request_line", "content_type", "body", "expected"),
    [
        (("GET", FSGROUP_PATH), "application/json", b"", (405, "")),
        (("PUT", FSGROUP_PATH), "application/json", VALID, (405, "")),
        (("POST", "/mutate-pods/fsgroup-change-policy/Always"), "application/json", VALID, (404, "")),
        (("POST", "/mutate-pods"), "application/json", VALID, (404, "")),
        (("POST", "/"), "application/json", VALID, (404, "")),
        (("POST", FSGROUP_PATH), "text/plain", VALID, (415, "Content-Type must be application/json")),
        (("POST", FSGROUP_PATH), "application/x-www-form-urlencoded", VALID, (415, "application/json")),
        (("POST", FSGROUP_PATH), "application/json", b"not json", (400, "not JSON")),
        (("POST", FSGROUP_PATH), "application/json", b"", (400, "not JSON")),
        (
            ("POST", FSGROUP_PATH),
            "application/json",
            b'{"kind": "AdmissionReview"}',
            (400, "expected apiVersion"),
        ),
        (("POST", "/validate-namespaces"), "application/json", b"[1, 2]", (400, "not list")),
        (("POST", "/validate-namespaces"), "application/json", b"{}", (400, "expected apiVersion")),
        # Hostile bodies: each once raised out of json.loads and was answered 500.
        (("POST", FSGROUP_PATH), "application/json", b"[" * 100_000, (400, "more than 100 deep")),
        (("POST", FSGROUP_PATH), "application/json", b'{"a":' * 50_000, (400, "more than 100 deep")),
        (("POST", FSGROUP_PATH), "application/json", DEEP_OBJECT, (400, "more than 100 deep")),
        (("POST", FSGROUP_PATH), "application/json", HUGE_INTEGER, (400, "an integer of 5000 digits")),
        (("POST", FSGROUP_PATH), "application/json", b"\xff\xfe{}", (400, "not UTF-8")),
        (("POST", FSGROUP_PATH), "application/json", VALID.decode().encode("utf-16"), (400, "not UTF-8")),
        (("POST", FSGROUP_PATH), "application/json", VALID[: len(VALID) // 2], (400, "not JSON")),
    ],
)
def test_a_bad_request_gets_a_clear_4xx(
    webhook: WebhookProcess,
    request_line: tuple[str, str],
    content_type: str,
    body: bytes,
    expected: tuple[int, str],
) -> None:
    (method, path), (status, text) = request_line, expected
    conn = webhook.connect()
    try:
        reply = post(conn, path, body, content_type, method)
    finally:
        conn.close()
    assert reply.status == status, reply.body
    assert text.encode() in reply.body


@pytest.mark.parametrize(
    ("path", "body", "warning"),
    [
        (FSGROUP_PATH, NO_SPEC, "the pod has no spec"),
        (FSGROUP_PATH, NO_OBJECT, "no pod object"),
        ("/mutate-pods/selinux-change-policy/Recursive", UPDATE, 'operation "UPDATE" is not defaulted'),
        ("/validate-namespaces", NAMESPACE_WITHOUT_METADATA, "no namespace object with metadata"),
    ],
)
def test_a_malformed_object_is_allowed_unchanged_with_a_warning(
    webhook: WebhookProcess, path: str, body: bytes, warning: str
) -> None:
    conn = webhook.connect()
    try:
        response = post(conn, path, body).review()["response"]
    finally:
        conn.close()
    assert response["allowed"] is True and "patch" not in response
    assert warning in response["warnings"][0]


def test_bodies_over_3_mib_are_refused_and_just_under_is_served(webhook: WebhookProcess) -> None:
    big = pod(annotations={"filler": ""})
    body, _ = review_body(big)
    big["metadata"]["annotations"]["filler"] = "x" * (3 * 1024 * 1024 - len(body) - 1024)
    under, _ = review_body(big)
    big["metadata"]["annotations"]["filler"] += "x" * 2048
    over, _ = review_body(big)
    assert len(under) < 3 * 1024 * 1024 < len(over)
    conn = webhook.connect()
    try:
        response = post(conn, FSGROUP_PATH, under).review()["response"]
        assert decoded_patch(response) == POD_CASES[0].patches[FSGROUP_PATH]
    finally:
        conn.close()
    conn = webhook.connect()
    try:
        reply = post(conn, FSGROUP_PATH, over)
    except (ConnectionError, ssl.SSLError):
        # The server may close before the client has sent it all; it must not have answered 5xx.
        reply = None
    finally:
        conn.close()
    assert reply is None or reply.status == 413, reply
    # The server is still serving.
    assert call(webhook, FSGROUP_PATH, pod())["allowed"] is True


def test_healthz(webhook: WebhookProcess) -> None:
    conn = webhook.connect()
    try:
        reply = post(conn, "/healthz", b"", method="GET")
    finally:
        conn.close()
    assert (reply.status, reply.body) == (200, b"ok\n")


def test_reviews_are_counted_by_path_and_result_on_the_metrics_endpoint(webhook: WebhookProcess) -> None:
    patched, allowed, denied = POD_CASES[0], NAMESPACE_CASES[0], NAMESPACE_CASES[3]
    assert patched.patches[FSGROUP_PATH] and not allowed.violations and denied.violations
    before = scrape(webhook.metrics_path)
    assert call(webhook, FSGROUP_PATH, patched.pod)["allowed"] is True
    for case in (allowed, denied, denied):
        call(webhook, "/validate-namespaces", namespace(case.labels), "Namespace")
    conn = webhook.connect()
    try:
        assert post(conn, FSGROUP_PATH, b"{}").status == 400
    finally:
        conn.close()
    after = scrape(webhook.metrics_path)
    reviews = "s3csi_admission_reviews_total"
    assert delta(before, after, reviews, path=FSGROUP_PATH, result="patched") == 1
    assert delta(before, after, reviews, path=FSGROUP_PATH, result="error") == 1
    assert delta(before, after, reviews, path="/validate-namespaces", result="allowed") == 1
    assert delta(before, after, reviews, path="/validate-namespaces", result="denied") == 2
    counts = "s3csi_admission_review_duration_seconds_count"
    assert delta(before, after, counts, path=FSGROUP_PATH) == 2
    assert delta(before, after, counts, path="/validate-namespaces") == 3
    # Only the routes' paths become labels: a request for any other path is not counted.
    conn = webhook.connect()
    try:
        assert post(conn, "/x" * 40, b"{}").status in (404, 405)
    finally:
        conn.close()
    paths = {dict(labels).get("path") for (name, labels) in scrape(webhook.metrics_path) if name == reviews}
    assert paths <= {*MUTATE_PATHS, "/validate-namespaces", "/mutate-pods/mount-propagation"}
    # Plain HTTP on its own socket, no health check there (the HTTPS port has /healthz).
    assert get(webhook.metrics_path, "/healthz")[0] == 404


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_tls_1_2_or_newer_only(webhook: WebhookProcess, ca: CertificateAuthority) -> None:
    conn = webhook.connect()
    try:
        conn.connect()
        assert conn.sock.version() in ("TLSv1.2", "TLSv1.3")
    finally:
        conn.close()
    old = ca.client_context()
    old.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    with (
        socket.create_connection(("127.0.0.1", webhook.port), timeout=10) as raw,
        pytest.raises(ssl.SSLError),
    ):
        old.wrap_socket(raw, server_hostname="localhost")
    # And a client that does not trust our CA cannot be fooled into trusting it.
    with (
        socket.create_connection(("127.0.0.1", webhook.port), timeout=10) as raw,
        pytest.raises(ssl.SSLError),
    ):
        ssl.create_default_context().wrap_socket(raw, server_hostname="localhost")


def test_requests_are_logged_without_bodies(webhook: WebhookProcess) -> None:
    marker = "secret-marker-4d1f9e"
    call(webhook, FSGROUP_PATH, pod(annotations={"note": marker}))
    wait_until(lambda: f'"POST {FSGROUP_PATH}" 200' in webhook.log())
    log = webhook.log()
    assert f'127.0.0.1 "POST {FSGROUP_PATH}" 200' in log
    assert marker not in log


def test_sigterm_stops_gracefully_with_exit_0(tmp_path: Path, ca: CertificateAuthority) -> None:
    process = WebhookProcess(tmp_path, ca)
    try:
        conn = process.connect()
        try:
            assert post(conn, "/healthz", b"", method="GET").status == 200
        finally:
            conn.close()
    finally:
        status = process.terminate()
    assert status == 0, process.log()
    assert "stopping" in process.log()
    assert "Traceback" not in process.log()


def served_serial(webhook: WebhookProcess, server_name: str | None = "localhost") -> int:
    """The serial of the certificate a new connection gets; ``server_name=None`` sends no SNI, as a client
    connecting to an IP address (kubelet's probes) does."""
    context = webhook.ca.client_context()
    context.check_hostname = server_name is not None
    with (
        socket.create_connection(("127.0.0.1", webhook.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def wait_for_serial(webhook: WebhookProcess, serial: int) -> None:
    assert wait_until(lambda: served_serial(webhook) == serial), (
        f"certificate {serial} not served:\n{webhook.log()}"
    )
    assert served_serial(webhook, server_name=None) == serial


def test_a_rotated_certificate_is_served_without_restart(tmp_path: Path, ca: CertificateAuthority) -> None:
    process = WebhookProcess(tmp_path, ca, "--cert-reload-interval", "0.1")
    try:
        assert served_serial(process) == process.serial
        # Half a rotation (a new certificate whose key is not written yet) keeps the old pair in service.
        other = tmp_path / "other"
        other.mkdir()
        half = ca.issue(other / "tls.crt", other / "tls.key")
        (other / "tls.crt").replace(process.cert)
        assert wait_until(lambda: "does not load yet" in process.log()), process.log()
        assert served_serial(process) == process.serial
        (other / "tls.key").replace(process.key)
        wait_for_serial(process, half)
        # A full rotation as cert-manager does it.
        rotated = ca.issue(process.cert, process.key)
        wait_for_serial(process, rotated)
        assert call(process, FSGROUP_PATH, pod())["allowed"] is True
    finally:
        assert process.terminate() == 0, process.log()


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (
            ["--cert", "/nonexistent/tls.crt", "--key", "/nonexistent/tls.key"],
            2,
            "certificate file /nonexistent",
        ),
        (["--cert", "{bad}", "--key", "{bad}"], 2, "cannot load certificate"),
        (["--cert", "{cert}", "--key", "{cert}", "--port", "65536"], 2, "--port: port 65536 is out of range"),
        (["--cert", "{cert}", "--key", "{cert}", "--cert-reload-interval", "0"], 2, "--cert-reload-interval"),
        (
            ["--cert", "{cert}", "--key", "{cert}", "--read-timeout", "-1"],
            2,
            "--read-timeout: must be a positive",
        ),
        (
            ["--cert", "{cert}", "--key", "{key}", "--host", "127.0.0.1", "--port", "{busy}"],
            1,
            "cannot listen",
        ),
    ],
)
def test_cli_errors_are_one_line(
    tmp_path: Path, ca: CertificateAuthority, argv: list[str], status: int, message: str
) -> None:
    cert, key, bad = tmp_path / "tls.crt", tmp_path / "tls.key", tmp_path / "bad.pem"
    ca.issue(cert, key)
    bad.write_text("not a certificate\n")
    with socket.create_server(("127.0.0.1", 0)) as busy:
        values = {"cert": cert, "key": key, "bad": bad, "busy": busy.getsockname()[1]}
        args = [a.format(**values) for a in argv]
        result = subprocess.run(
            [sys.executable, "-m", "s3csi", "webhook", *args],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == status, result.stderr
    assert message in result.stderr and result.stderr.count("\n") == 1, result.stderr


def test_a_bug_in_a_decision_fails_open_with_a_warning_not_500() -> None:
    def broken(request: AdmissionRequest) -> AdmissionResponse:
        raise KeyError("bug")

    metrics = WebhookMetrics()

    async def scenario() -> dict[str, Any]:
        async with TestClient(TestServer(make_app({"/broken": broken}, metrics=metrics))) as client:
            reply = await client.post("/broken", data=VALID, headers={"Content-Type": "application/json"})
            assert reply.status == 200
            review: dict[str, Any] = await reply.json()
            return review

    response = asyncio.run(scenario())["response"]
    assert response["allowed"] is True and "patch" not in response
    assert response["warnings"] == ["s3csi webhook internal error: request allowed unchanged"]
    samples = parse(generate_latest(metrics.registry).decode())
    assert value(samples, "s3csi_admission_reviews_total", path="/broken", result="error") == 1
    assert value(samples, "s3csi_admission_reviews_total", path="/broken", result="allowed") == 0


# Hostile clients, played as an attacker would: raw TLS sockets, requests written byte by byte.

READ_TIMEOUT = 2.0
# How long a hostile connection may stay open before the test calls the server's deadline broken: far
# longer than READ_TIMEOUT, so a loaded machine cannot fail the test, far shorter than never.
GIVE_UP = 60.0


@pytest.fixture(scope="module")
def impatient(tmp_path_factory: pytest.TempPathFactory, ca: CertificateAuthority) -> Iterator[WebhookProcess]:
    """A webhook with a short read deadline, so the tests of its deadline take seconds."""
    process = WebhookProcess(tmp_path_factory.mktemp("impatient"), ca, "--read-timeout", str(READ_TIMEOUT))
    try:
        yield process
    finally:
        assert process.terminate() == 0, process.log()


def tls_socket(webhook: WebhookProcess) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", webhook.port), timeout=GIVE_UP)
    return webhook.ca.client_context().wrap_socket(raw, server_hostname="localhost")


def request_head(path: str, length: int | None, *headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: s3csi-webhook.s3csi.svc", "Content-Type: application/json"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join([*lines, *headers]) + "\r\n\r\n").encode()


def until_closed(sock: ssl.SSLSocket) -> bytes:
    """Everything the server sends until it closes the connection; fails if it keeps it open."""
    received = b""
    deadline = time.monotonic() + GIVE_UP
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except (ConnectionError, ssl.SSLError):
            return received
        except TimeoutError:
            break
        if not chunk:
            return received
        received += chunk
    raise AssertionError(f"the server kept the connection open for {GIVE_UP}s; received {received[:200]!r}")


def status_of(reply: bytes) -> int:
    assert reply.startswith(b"HTTP/1."), reply[:200]
    return int(reply.split(b" ", 2)[1])


def first_reply(sock: ssl.SSLSocket) -> bytes:
    """The first response on ``sock``: its head and the Content-Length bytes of body that follow."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        assert chunk, f"closed without a full response: {received[:200]!r}"
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(
        next(
            line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
        )
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, f"closed in the middle of the response: {received[:200]!r}"
        body += chunk
    return head + b"\r\n\r\n" + body


def assert_still_serving(webhook: WebhookProcess) -> None:
    assert call(webhook, FSGROUP_PATH, pod())["allowed"] is True
    assert "Traceback" not in webhook.log(), webhook.log()


def wait_for_log(webhook: WebhookProcess, text: str, before: int) -> None:
    """Wait until ``text`` is in the log more than the ``before`` times it was."""
    assert wait_until(lambda: webhook.log().count(text) > before), (
        f"{text!r} not logged again:\n{webhook.log()}"
    )


CUT = "did not arrive whole"


@pytest.mark.parametrize(
    ("name", "head", "body"),
    [
        ("a Content-Length of 1 TB, no body sent", request_head(FSGROUP_PATH, 10**12), b""),
        (
            "4 MiB in chunks",
            request_head(FSGROUP_PATH, None, "Transfer-Encoding: chunked"),
            b"".join(b"10000\r\n" + b"x" * 0x10000 + b"\r\n" for _ in range(64)) + b"0\r\n\r\n",
        ),
        (
            "a gzip bomb: 20 KB that inflate to 20 MB",
            request_head(FSGROUP_PATH, len(GZIP_BOMB), "Content-Encoding: gzip"),
            GZIP_BOMB,
        ),
    ],
)
def test_a_body_beyond_the_limit_gets_413(
    webhook: WebhookProcess, name: str, head: bytes, body: bytes
) -> None:
    with tls_socket(webhook) as sock:
        sock.sendall(head)
        try:
            sock.sendall(body)
        except (ConnectionError, ssl.SSLError):
            pass  # The server may answer and close before the client has sent it all.
        reply = first_reply(sock)
    assert status_of(reply) == 413, (name, reply[:300])
    assert b"Connection: close" in reply and b"3145728" in reply
    assert_still_serving(webhook)


@pytest.mark.parametrize(
    ("name", "request_bytes", "status"),
    [
        ("33 header fields", request_head(FSGROUP_PATH, 2, *[f"X-{i}: y" for i in range(33)]) + b"{}", 400),
        ("a header field of 9000 bytes", request_head(FSGROUP_PATH, 2, "X: " + "y" * 9000) + b"{}", 400),
        ("a request line of 9000 bytes", request_head(FSGROUP_PATH + "?" + "a" * 9000, 2) + b"{}", 400),
        ("two Content-Lengths", request_head(FSGROUP_PATH, 2, "Content-Length: 3") + b"{}", 400),
        ("not HTTP", b"\x16\x03\x01 hello\r\n\r\n", 400),
    ],
)
def test_a_malformed_http_request_gets_400_without_a_traceback(
    webhook: WebhookProcess, name: str, request_bytes: bytes, status: int
) -> None:
    with tls_socket(webhook) as sock:
        sock.sendall(request_bytes)
        reply = until_closed(sock)
    assert status_of(reply) == status, (name, reply[:300])
    assert_still_serving(webhook)


def test_a_truncated_body_is_dropped_without_an_error(impatient: WebhookProcess) -> None:
    """The client announces the whole review, sends half of it, and closes its side (TLS close_notify)."""
    dropped = f'"POST {FSGROUP_PATH}" 408'
    before = impatient.log().count(dropped)
    with tls_socket(impatient) as sock:
        sock.sendall(request_head(FSGROUP_PATH, len(VALID)) + VALID[: len(VALID) // 2])
        sock.unwrap()
    wait_for_log(impatient, dropped, before)
    assert_still_serving(impatient)


@pytest.mark.parametrize(
    ("name", "head"),
    [
        ("no byte after the TLS handshake", b""),
        ("headers and no body", request_head(FSGROUP_PATH, len(VALID))),
        ("half the headers", request_head(FSGROUP_PATH, len(VALID))[:40]),
    ],
)
def test_a_request_that_never_arrives_is_closed_at_the_deadline(
    impatient: WebhookProcess, name: str, head: bytes
) -> None:
    before = impatient.log().count(CUT)
    with tls_socket(impatient) as sock:
        sock.sendall(head)
        assert until_closed(sock) == b"", name
    wait_for_log(impatient, CUT, before)
    assert_still_serving(impatient)


def test_no_tls_handshake_is_closed_at_the_deadline(impatient: WebhookProcess) -> None:
    with socket.create_connection(("127.0.0.1", impatient.port), timeout=GIVE_UP) as raw:
        raw.sendall(b"\x16\x03\x01")  # the start of a ClientHello, and nothing more
        try:
            assert raw.recv(1024) == b""
        except ConnectionResetError:
            pass
    assert_still_serving(impatient)


@pytest.mark.parametrize("part", ["headers", "body"])
def test_a_slow_loris_is_cut_at_the_deadline_while_others_are_served(
    impatient: WebhookProcess, part: str
) -> None:
    """One byte a second, forever: the connection is closed, and meanwhile other clients get answers."""
    head = request_head(FSGROUP_PATH, len(VALID))
    slow = head + VALID if part == "headers" else VALID
    served = 0
    before = impatient.log().count(CUT)
    with tls_socket(impatient) as sock:
        if part == "body":
            sock.sendall(head)
        deadline = time.monotonic() + GIVE_UP
        try:
            for byte in slow:
                assert time.monotonic() < deadline, f"still reading the slow {part} after {GIVE_UP}s"
                sock.sendall(bytes([byte]))
                assert call(impatient, FSGROUP_PATH, pod())["allowed"] is True
                served += 1
                time.sleep(1.0)
            raise AssertionError(f"the whole request was read one byte a second ({len(slow)} s)")
        except (ConnectionError, ssl.SSLError):
            pass
        assert until_closed(sock) == b""
    assert served >= 1
    wait_for_log(impatient, CUT, before)
    assert_still_serving(impatient)


def test_an_idle_keep_alive_connection_is_not_cut_by_the_read_deadline(impatient: WebhookProcess) -> None:
    """The deadline bounds each request from its first byte, not the connection's life."""
    conn = impatient.connect()
    try:
        assert post(conn, FSGROUP_PATH, VALID).review()["response"]["allowed"] is True
        time.sleep(2 * READ_TIMEOUT)  # idle between reviews, as the API server's pooled connections are
        assert post(conn, FSGROUP_PATH, VALID).review()["response"]["allowed"] is True
    finally:
        conn.close()


def test_a_pipelined_request_whose_body_never_arrives_is_closed_at_the_deadline(
    impatient: WebhookProcess,
) -> None:
    """A whole review and, in the same write, the headers of a second one whose body never comes: the
    second request's bytes arrived before the first was answered, and its deadline must still run."""
    before = impatient.log().count(CUT)
    with tls_socket(impatient) as sock:
        sock.sendall(request_head(FSGROUP_PATH, len(VALID)) + VALID + request_head(FSGROUP_PATH, len(VALID)))
        received = until_closed(sock)
    assert status_of(received) == 200 and received.count(b"HTTP/1.1 ") == 1, received[:300]
    wait_for_log(impatient, CUT, before)
    assert_still_serving(impatient)
