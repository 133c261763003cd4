"""Real IAM, STS and S3 enforcement for the credential tests: moto with IAM on, a web-identity front, IMDS.

- :class:`IamWorld`: moto's server with IAM enforcement (signatures, access keys, user and role policies are
  checked on every S3 call). An admin user is made while enforcement is off; everything else goes through
  IAM with the admin's keys, as an operator would. Before a world is handed out, :func:`check_aws_behaviour`
  makes sure this moto release evaluates policies as AWS does where the tests depend on it, and otherwise
  fails naming the difference (not a bare AccessDenied in some test's publish).
- :class:`WebIdentityFront`: the STS endpoint the code under test calls. moto's
  ``AssumeRoleWithWebIdentity`` accepts any token and, with enforcement on, cannot take the unsigned call at
  all (it fails with HTTP 500). So this front does what STS does with the token — it checks it against the
  issuer (here the tokens "kubelet" minted through the faked Kubernetes TokenRequest API: audience, expiry,
  subject ``system:serviceaccount:NS:SA``) and the role's trust (which subjects may assume it) — and then
  forwards the call to moto, signed with the admin's keys, so moto issues real session keys whose role
  policies it enforces on S3.
- :class:`LocalImds`: an IMDSv2 server on 127.0.0.1 (PUT token, then role name and keys with the token).
"""

from __future__ import annotations

import contextlib
import datetime
import importlib.metadata
import json
import os
import secrets
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from botocore.exceptions import ClientError

from s3csi.demo.s3server import EmbeddedS3Server
from s3csi.s3 import Credentials
from tests.boto_support import boto3_client

AUDIENCE = "sts.amazonaws.com"


def every_argv() -> str:
    """The command lines of all processes, one a line: where a leaked secret value would show to anyone."""
    argv = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                argv.append(Path("/proc", entry, "cmdline").read_bytes().decode(errors="replace"))
            except OSError:
                continue  # the process ended while we looked
    return "\n".join(argv)


def bucket_policy(bucket: str, actions: list[str]) -> str:
    resources = [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": actions, "Resource": resources}],
        }
    )


@dataclass
class IamWorld:
    server: EmbeddedS3Server
    admin: Credentials
    secret_values: set[str] = field(default_factory=set)
    """Every secret this world handed out: the redaction test searches for each."""
    accounts: dict[str, Credentials] = field(default_factory=dict)
    """Administrator keys of the other accounts made so far (:meth:`other_account`)."""

    def client(self, service: str, credentials: Credentials | None = None) -> Any:
        return boto3_client(service, self.server, credentials or self.admin)

    def user(self, name: str, policy: str | None) -> Credentials:
        """A new IAM user with ``policy`` inline (None: no permission at all) and one access key."""
        iam = self.client("iam")
        iam.create_user(UserName=name)
        if policy is not None:
            iam.put_user_policy(UserName=name, PolicyName="s3", PolicyDocument=policy)
        return self.access_key(name)

    def access_key(self, user: str) -> Credentials:
        key = self.client("iam").create_access_key(UserName=user)["AccessKey"]
        self.secret_values.add(key["SecretAccessKey"])
        return Credentials(key["AccessKeyId"], key["SecretAccessKey"], source="iam")

    def delete_access_key(self, user: str, access_key_id: str) -> None:
        self.client("iam").delete_access_key(UserName=user, AccessKeyId=access_key_id)

    def role(self, name: str, policy: str, *, principal: dict[str, str] | None = None) -> str:
        """A role with ``policy`` inline. Its trust admits web identities (the front checks which service
        accounts) or ``principal``: moto checks that trust for AssumeRole, not for the web-identity call."""
        statement = {
            "Effect": "Allow",
            "Principal": principal or {"Federated": "kubernetes"},
            "Action": "sts:AssumeRole" if principal else "sts:AssumeRoleWithWebIdentity",
        }
        trust = {"Version": "2012-10-17", "Statement": [statement]}
        iam = self.client("iam")
        arn: str = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        iam.put_role_policy(RoleName=name, PolicyName="s3", PolicyDocument=policy)
        return arn

    @property
    def admin_arn(self) -> str:
        arn: str = self.client("iam").get_user(UserName="admin")["User"]["Arn"]
        return arn

    def bucket(self, name: str) -> str:
        self.client("s3").create_bucket(Bucket=name)
        return name

    def other_account(self, account_id: str) -> Credentials:
        """Keys of an administrator role in another account (moto keeps accounts apart by the account of
        the keys). The role is made, like this world's admin, in a short window without enforcement."""
        if account_id in self.accounts:
            return self.accounts[account_id]
        self.server.allow_unauthenticated_calls(None)
        try:
            keys = self.assume_role(f"arn:aws:iam::{account_id}:role/admin", "setup")
            trust = {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"AWS": self.admin_arn}, "Action": "sts:AssumeRole"}
                ],
            }
            everything = {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
            }
            iam = self.client("iam", keys)
            iam.create_role(RoleName="admin", AssumeRolePolicyDocument=json.dumps(trust))
            iam.put_role_policy(RoleName="admin", PolicyName="all", PolicyDocument=json.dumps(everything))
        finally:
            self.server.allow_unauthenticated_calls(0)
        self.accounts[account_id] = keys
        return keys

    def assume_role(self, role_arn: str, session_name: str) -> Credentials:
        """Session keys of ``role_arn`` issued by moto's STS (as EC2 does for an instance profile)."""
        found = self.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=session_name)["Credentials"]
        self.secret_values.update((found["SecretAccessKey"], found["SessionToken"]))
        return Credentials(found["AccessKeyId"], found["SecretAccessKey"], found["SessionToken"])


@contextlib.contextmanager
def iam_world() -> Iterator[IamWorld]:
    """A moto server with IAM enforcement on, and its admin."""
    with EmbeddedS3Server.start(enforce_iam=True) as server:
        server.allow_unauthenticated_calls(None)
        iam = boto3_client("iam", server)
        iam.create_user(UserName="admin")
        everything = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
        }
        iam.put_user_policy(UserName="admin", PolicyName="all", PolicyDocument=json.dumps(everything))
        key = iam.create_access_key(UserName="admin")["AccessKey"]
        server.allow_unauthenticated_calls(0)
        world = IamWorld(server, Credentials(key["AccessKeyId"], key["SecretAccessKey"]))
        world.secret_values.add(key["SecretAccessKey"])
        check_aws_behaviour(world)
        yield world


def list_bucket_mismatch(moto_version: str, error_code: str, error_message: str) -> str:
    """What to say when a user allowed ``s3:ListBucket`` was refused ListObjectsV2."""
    if error_code == "AccessDenied":
        behaviour = (
            "evaluates ListObjectsV2 as the IAM action s3:ListObjectsV2, not s3:ListBucket as AWS does"
        )
    else:
        behaviour = f"refuses ListObjectsV2 by a user allowed s3:ListBucket ({error_code}: {error_message})"
    return (
        f"the embedded S3 server (moto {moto_version}) {behaviour}, so every IAM-enforcing test would fail: "
        "pin moto[server] in pyproject.toml's demo extra to a release that behaves like AWS "
        "and run `make lock`"
    )


def check_aws_behaviour(world: IamWorld) -> None:
    """A user whose policy allows only ``s3:ListBucket`` on a bucket lists it (ListObjectsV2), as on AWS.

    The probe's user and bucket are deleted again: the world is handed out as it was."""
    iam, name = world.client("iam"), "aws-behaviour-probe"
    bucket = world.bucket(name)
    iam.create_user(UserName=name)
    iam.put_user_policy(
        UserName=name, PolicyName="s3", PolicyDocument=bucket_policy(bucket, ["s3:ListBucket"])
    )
    key = iam.create_access_key(UserName=name)["AccessKey"]
    probe = Credentials(key["AccessKeyId"], key["SecretAccessKey"], source="iam")
    refusal: dict[str, str] | None = None
    try:
        world.client("s3", probe).list_objects_v2(Bucket=bucket)
    except ClientError as exc:
        refusal = exc.response.get("Error", {})
    finally:
        iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
        iam.delete_user_policy(UserName=name, PolicyName="s3")
        iam.delete_user(UserName=name)
        world.client("s3").delete_bucket(Bucket=bucket)
    if refusal is not None:
        version = importlib.metadata.version("moto")
        message = list_bucket_mismatch(version, refusal.get("Code", "?"), refusal.get("Message", ""))
        pytest.fail(message, pytrace=False)


@dataclass(frozen=True)
class TokenClaims:
    audience: str
    subject: str
    expiry: float


class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def reply(self, status: int, body: bytes, content_type: str = "text/xml") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _sts_error(code: str, message: str) -> bytes:
    return (
        f'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
        f"<Code>{code}</Code><Message>{message}</Message></Error><RequestId>r</RequestId></ErrorResponse>"
    ).encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class WebIdentityFront:
    """STS's token and trust checks in front of moto (see the module docstring)."""

    def __init__(self, world: IamWorld) -> None:
        self.world = world
        self.tokens: dict[str, TokenClaims] = {}
        self.trust: dict[str, set[str]] = {}
        self.exchanges: list[str] = []
        """The token of every successful exchange, in order."""
        front = self

        class Handler(_Quiet):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status, answer = front.handle(body)
                self.reply(status, answer)

        self._server = _Server(Handler)
        self.url = self._server.url

    def allow(self, role_arn: str, namespace: str, service_account: str) -> None:
        """The role's trust policy admits this service account (IRSA's ``sub`` condition)."""
        self.trust.setdefault(role_arn, set()).add(f"system:serviceaccount:{namespace}:{service_account}")

    def mint(
        self, namespace: str, service_account: str, *, audience: str = AUDIENCE, ttl_s: float = 3600
    ) -> str:
        """A token as kubelet gets it from the TokenRequest API for the pod's service account."""
        token = f"k8s-token-{secrets.token_urlsafe(24)}"
        expiry = datetime.datetime.now(datetime.UTC).timestamp() + ttl_s
        self.tokens[token] = TokenClaims(
            audience, f"system:serviceaccount:{namespace}:{service_account}", expiry
        )
        self.world.secret_values.add(token)
        return token

    def tokens_json(self, token: str, audience: str = AUDIENCE) -> str:
        """kubelet's ``csi.storage.k8s.io/serviceAccount.tokens`` for one audience."""
        expiry = datetime.datetime.fromtimestamp(self.tokens[token].expiry, datetime.UTC)
        return json.dumps(
            {audience: {"token": token, "expirationTimestamp": expiry.strftime("%Y-%m-%dT%H:%M:%SZ")}}
        )

    def handle(self, body: bytes) -> tuple[int, bytes]:
        form = dict(urllib.parse.parse_qsl(body.decode()))
        if form.get("Action") != "AssumeRoleWithWebIdentity":
            return 400, _sts_error("InvalidAction", "only AssumeRoleWithWebIdentity is served here")
        claims = self.tokens.get(form.get("WebIdentityToken", ""))
        if claims is None:
            return 400, _sts_error("InvalidIdentityToken", "Couldn't verify the token's signature")
        if claims.audience != AUDIENCE:
            return 400, _sts_error("InvalidIdentityToken", "Incorrect token audience")
        if claims.expiry <= datetime.datetime.now(datetime.UTC).timestamp():
            return 400, _sts_error("ExpiredTokenException", "Token is expired")
        if claims.subject not in self.trust.get(form.get("RoleArn", ""), set()):
            return 403, _sts_error("AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity")
        status, answer = self._forward(body)
        if status == 200:
            self.exchanges.append(form["WebIdentityToken"])
        return status, answer

    def _forward(self, body: bytes) -> tuple[int, bytes]:
        url = f"{self.world.server.endpoint_url}/"
        request = AWSRequest(
            method="POST", url=url, data=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        admin = self.world.admin
        SigV4Auth(
            BotoCredentials(admin.access_key_id, admin.secret_access_key), "sts", self.world.server.region
        ).add_auth(request)
        prepared = urllib.request.Request(
            url, data=body, headers=dict(request.headers.items()), method="POST"
        )
        try:
            with urllib.request.urlopen(prepared, timeout=30) as response:
                answer: bytes = response.read()
                for element in ("SecretAccessKey", "SessionToken"):
                    _collect(answer, element, self.world.secret_values)
                return response.status, answer
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def stop(self) -> None:
        self._server.stop()


def _collect(body: bytes, element: str, into: set[str]) -> None:
    text = body.decode()
    start = text.find(f"<{element}>")
    if start >= 0:
        end = text.find(f"</{element}>", start)
        into.add(text[start + len(element) + 2 : end])


class LocalImds:
    """IMDSv2 on 127.0.0.1 serving one role's keys; refuses reads without a session token."""

    def __init__(self, role: str, credentials: Credentials) -> None:
        self.role = role
        self.credentials = credentials
        # placement/region's answer; None: 404, as off EC2 or on an instance that does not say.
        self.region: str | None = None
        self.session_tokens: set[str] = set()
        self.requests: list[str] = []
        imds = self

        class Handler(_Quiet):
            def do_PUT(self) -> None:
                imds.requests.append(f"PUT {self.path}")
                if self.path != "/latest/api/token" or not self.headers.get(
                    "X-aws-ec2-metadata-token-ttl-seconds"
                ):
                    self.reply(400, b"", "text/plain")
                    return
                token = secrets.token_urlsafe(16)
                imds.session_tokens.add(token)
                self.reply(200, token.encode(), "text/plain")

            def do_GET(self) -> None:
                imds.requests.append(f"GET {self.path}")
                if self.headers.get("X-aws-ec2-metadata-token") not in imds.session_tokens:
                    self.reply(401, b"", "text/plain")
                    return
                base = "/latest/meta-data/iam/security-credentials/"
                if self.path == "/latest/meta-data/placement/region" and imds.region is not None:
                    self.reply(200, imds.region.encode(), "text/plain")
                elif self.path == base:
                    self.reply(200, imds.role.encode(), "text/plain")
                elif self.path == base + imds.role:
                    expiry = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=6)
                    document = {
                        "Code": "Success",
                        "Type": "AWS-HMAC",
                        "AccessKeyId": imds.credentials.access_key_id,
                        "SecretAccessKey": imds.credentials.secret_access_key,
                        "Token": imds.credentials.session_token or "",
                        "Expiration": expiry.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    }
                    self.reply(200, json.dumps(document).encode(), "application/json")
                else:
                    self.reply(404, b"", "text/plain")

        self._server = _Server(Handler)
        self.url = self._server.url

    def stop(self) -> None:
        self._server.stop()
