"""Directory buckets (s3csi.s3.express): names, zonal endpoints, CreateSession answers, when a session is
replaced, one CreateSession shared by concurrent requests, and the session signature next to botocore's."""

from __future__ import annotations

import asyncio
import random

import pytest
from botocore.auth import S3ExpressAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

from s3csi.fs.listing import AnyOrderEntries, DirectoryWins, Entry
from s3csi.s3.credentials import Credentials
from s3csi.s3.endpoints import SIGV4_S3EXPRESS, EndpointInputs, resolve
from s3csi.s3.express import (
    ExpressSessions,
    MalformedSession,
    is_directory_bucket,
    parse_create_session,
    refresh_time,
    refused_session,
    zone_id,
)
from s3csi.s3.signing import EMPTY_SHA256, sign
from s3csi.s3.wire import ObjectInfo


@pytest.mark.parametrize(
    ("bucket", "directory", "zone"),
    [
        ("data--usw2-az1--x-s3", True, "usw2-az1"),
        ("my-data--use1-az4--x-s3", True, "use1-az4"),
        ("edge--usw2-lax1-az1--x-s3", True, "usw2-lax1-az1"),
        ("data", False, None),
        ("data--x-s3", False, None),  # no zone
        ("data--usw2az1--x-s3", False, None),  # a zone id has a dash
        ("Data--usw2-az1--x-s3", False, None),  # capitals
        ("data.dots--usw2-az1--x-s3", False, None),
        ("data--usw2-az1--x-s3-more", False, None),
    ],
)
def test_directory_bucket_names(bucket: str, directory: bool, zone: str | None) -> None:
    assert is_directory_bucket(bucket) is directory
    if zone is None:
        with pytest.raises(ValueError, match="BASE--ZONEID--x-s3"):
            zone_id(bucket)
    else:
        assert zone_id(bucket) == zone


def test_the_endpoint_rules_send_a_directory_bucket_to_its_zonal_endpoint_with_sessions() -> None:
    endpoint = resolve("data--usw2-az1--x-s3", EndpointInputs(region="us-west-2"))
    assert (
        endpoint.url("a b/c")
        == "https://data--usw2-az1--x-s3.s3express-usw2-az1.us-west-2.amazonaws.com/a%20b/c"
    )
    assert (endpoint.auth_scheme, endpoint.signing_name) == (SIGV4_S3EXPRESS, "s3express")


SESSION_XML = (
    b'<?xml version="1.0" encoding="UTF-8"?><CreateSessionResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    b"<Credentials><SessionToken>TOKEN</SessionToken><SecretAccessKey>SECRET</SecretAccessKey>"
    b"<AccessKeyId>ASIAKEY</AccessKeyId><Expiration>2026-12-05T10:00:00Z</Expiration></Credentials>"
    b"</CreateSessionResult>"
)


def test_a_create_session_answer_gives_the_session() -> None:
    session = parse_create_session(SESSION_XML)
    assert (session.access_key_id, session.secret_access_key, session.session_token) == (
        "ASIAKEY",
        "SECRET",
        "TOKEN",
    )
    assert session.expiry == 1796464800.0


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"not xml", "not XML"),
        (SESSION_XML.replace(b"<SessionToken>TOKEN</SessionToken>", b""), "no SessionToken"),
        (SESSION_XML.replace(b"2026-12-05T10:00:00Z", b"tomorrow"), "Expiration that is not a time"),
    ],
)
def test_a_bad_create_session_answer_is_refused(body: bytes, problem: str) -> None:
    with pytest.raises(MalformedSession, match=problem) as refused:
        parse_create_session(body)
    assert b"SECRET" not in str(refused.value).encode()


@pytest.mark.parametrize(
    ("created", "expiry", "refresh_at"),
    [
        (0.0, 300.0, 240.0),  # AWS's five minutes: a minute before the end
        (0.0, 100.0, 50.0),  # shorter than two minutes: halfway
        (0.0, 2.0, 1.0),
        (10.0, 5.0, 5.0),  # already expired when made: at once
    ],
)
def test_when_a_session_is_replaced(created: float, expiry: float, refresh_at: float) -> None:
    assert refresh_time(created, expiry) == refresh_at


@pytest.mark.parametrize(
    ("method", "code", "status", "refused"),
    [
        ("GET", "ExpiredToken", 400, True),
        ("PUT", "InvalidToken", 400, True),
        ("HEAD", "BadRequest", 400, True),  # a HEAD's error has no body to say why
        ("HEAD", "Forbidden", 403, True),
        ("HEAD", "NotFound", 404, False),
        ("GET", "AccessDenied", 403, False),
        ("GET", "NoSuchKey", 404, False),
    ],
)
def test_which_errors_may_mean_a_session_ended(method: str, code: str, status: int, refused: bool) -> None:
    assert refused_session(method, code, status) is refused


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_sessions_are_cached_shared_and_replaced_before_they_expire() -> None:
    clock = Clock()
    made: list[str] = []
    release = asyncio.Event()

    async def create(bucket: str) -> Credentials:
        made.append(bucket)
        await release.wait()
        return Credentials(f"K{len(made)}", "S", "T", expiry=clock.now + 300, source="s3express-session")

    async def scenario() -> None:
        sessions = ExpressSessions(create, clock=clock)
        waiting = [asyncio.create_task(sessions.get("b--usw2-az1--x-s3")) for _ in range(5)]
        await asyncio.sleep(0)
        release.set()
        assert {(await task).access_key_id for task in waiting} == {"K1"}  # one CreateSession for all five
        clock.now += 239
        assert (await sessions.get("b--usw2-az1--x-s3")).access_key_id == "K1"
        clock.now += 1  # a minute before the end
        assert (await sessions.get("b--usw2-az1--x-s3")).access_key_id == "K2"
        sessions.forget("b--usw2-az1--x-s3")
        assert (await sessions.get("b--usw2-az1--x-s3")).access_key_id == "K3"
        assert (await sessions.get("c--usw2-az1--x-s3")).access_key_id == "K4"  # per bucket

    asyncio.run(scenario())
    assert made == ["b--usw2-az1--x-s3"] * 3 + ["c--usw2-az1--x-s3"]


def test_a_failed_create_session_is_tried_again_by_the_next_request() -> None:
    attempts: list[int] = []

    async def create(bucket: str) -> Credentials:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("throttled")
        return Credentials("K", "S", "T", expiry=2e9)

    async def scenario() -> None:
        sessions = ExpressSessions(create)
        with pytest.raises(RuntimeError):
            await sessions.get("b--usw2-az1--x-s3")
        assert (await sessions.get("b--usw2-az1--x-s3")).access_key_id == "K"

    asyncio.run(scenario())


def test_a_session_signature_is_botocores(monkeypatch: pytest.MonkeyPatch) -> None:
    """Same request, same instant: our headers equal those botocore's S3ExpressAuth adds."""
    monkeypatch.setattr(
        "botocore.auth.get_current_datetime", lambda: __import__("datetime").datetime(2026, 12, 5)
    )
    url = "https://b--usw2-az1--x-s3.s3express-usw2-az1.us-west-2.amazonaws.com/k?x-id=GetObject"
    session = Credentials("ASIAKEY", "SECRET", "TOKEN")
    ours = sign(
        "GET",
        url,
        {},
        content_sha256=EMPTY_SHA256,
        credentials=session,
        region="us-west-2",
        service="s3express",
        s3_session=True,
    )
    request = AWSRequest(method="GET", url=url, headers={"X-Amz-Content-SHA256": EMPTY_SHA256})
    S3ExpressAuth(
        ReadOnlyCredentials("ASIAKEY", "SECRET", "TOKEN"), "s3express", "us-west-2", identity_cache=None
    ).add_auth(request)
    theirs = dict(request.headers.items())
    assert {k.lower(): v for k, v in ours.items()} == {k.lower(): v for k, v in theirs.items()}
    assert ours["x-amz-s3session-token"] == "TOKEN"
    assert "X-Amz-Security-Token" not in ours
    assert "/us-west-2/s3express/aws4_request" in ours["Authorization"]


def _listing_in_any_order(seed: int, pages: int) -> list[Entry]:
    objects = [ObjectInfo(f"d/{name}", 1, '"e"', 0.0) for name in ("a", "x", "x-1", "x.txt", "y", "")]
    prefixes = ["d/x/", "d/z/", "d//"]
    items: list[ObjectInfo | str] = [*objects, *prefixes]
    random.Random(seed).shuffle(items)
    order = AnyOrderEntries("d/")
    entries: list[Entry] = []
    size = -(-len(items) // pages)
    for first in range(0, len(items), size):
        page = items[first : first + size]
        entries += order.page(
            [i for i in page if isinstance(i, ObjectInfo)], [i for i in page if isinstance(i, str)]
        )
    return entries + order.end()


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("pages", [1, 3, 9])
def test_a_listing_in_any_order_gives_what_the_sorted_one_gives(seed: int, pages: int) -> None:
    entries = _listing_in_any_order(seed, pages)
    ordered = DirectoryWins("d/")
    objects = sorted(f"d/{n}" for n in ("a", "x", "x-1", "x.txt", "y", ""))
    expected = ordered.page([ObjectInfo(k, 1, '"e"', 0.0) for k in objects], ["d//", "d/x/", "d/z/"])
    expected += ordered.end()
    assert sorted((e.name, e.kind) for e in entries) == sorted((e.name, e.kind) for e in expected)
    assert len({e.name for e in entries}) == len(entries)
