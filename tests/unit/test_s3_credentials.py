"""Credential sources without files: environment, static keys, the chain, redaction."""

from __future__ import annotations

import asyncio

import pytest

from s3csi.errors import InvalidArgument, PermissionDenied
from s3csi.s3.credentials import (
    CredentialChain,
    Credentials,
    EnvironmentCredentials,
    SharedCredentialsFile,
    StaticCredentials,
    default_credential_provider,
    env_pair,
)

SECRET = "wJalrXUtnFEMI-secret"
TOKEN = "FwoGZXIvYXdz-token"


def test_repr_never_shows_secrets() -> None:
    credentials = Credentials("AKID", SECRET, TOKEN, source="environment")
    assert SECRET not in repr(credentials)
    assert TOKEN not in repr(credentials)
    assert "AKID" in repr(credentials)


def test_environment_source() -> None:
    env = {"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_SESSION_TOKEN": TOKEN}
    found = asyncio.run(EnvironmentCredentials(env).get())
    assert found == Credentials("AKID", SECRET, TOKEN, source="environment")
    assert asyncio.run(EnvironmentCredentials({}).get()) is None


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({"AWS_ACCESS_KEY_ID": "AKID"}, "AWS_SECRET_ACCESS_KEY"),
        ({"AWS_SECRET_ACCESS_KEY": SECRET}, "AWS_ACCESS_KEY_ID"),
    ],
)
def test_half_set_environment_is_an_error_naming_the_missing_variable(
    env: dict[str, str], missing: str
) -> None:
    with pytest.raises(InvalidArgument, match=missing) as raised:
        EnvironmentCredentials(env)
    assert SECRET not in str(raised.value)


def test_chain_takes_the_first_source_with_credentials() -> None:
    static = Credentials("STATIC", SECRET)
    chain = CredentialChain([EnvironmentCredentials({}), _Fixed("second", static)])
    assert asyncio.run(chain.get()) is static


def test_chain_without_credentials_names_where_it_looked() -> None:
    chain = CredentialChain([EnvironmentCredentials({}), _Nothing("shared-credentials-file")])
    with pytest.raises(PermissionDenied, match="looked in: environment, shared-credentials-file"):
        asyncio.run(chain.get())


def test_default_chain_paths_from_environment() -> None:
    chain = default_credential_provider(
        {"AWS_SHARED_CREDENTIALS_FILE": "/x/creds", "AWS_CONFIG_FILE": "/x/config", "AWS_PROFILE": "team"}
    )
    files = chain.sources[-1]
    assert isinstance(files, SharedCredentialsFile)
    assert (files.credentials_path, files.config_path, files.profile) == ("/x/creds", "/x/config", "team")
    home = default_credential_provider({"HOME": "/home/u"}).sources[-1]
    assert isinstance(home, SharedCredentialsFile)
    assert (home.credentials_path, home.config_path, home.profile) == (
        "/home/u/.aws/credentials",
        "/home/u/.aws/config",
        "default",
    )


def test_static_credentials() -> None:
    credentials = Credentials("AKID", SECRET)
    assert asyncio.run(StaticCredentials(credentials).get()) is credentials


class _Fixed:
    def __init__(self, name: str, credentials: Credentials) -> None:
        self.name = name
        self._credentials = credentials

    async def get(self) -> Credentials | None:
        return self._credentials


class _Nothing:
    def __init__(self, name: str) -> None:
        self.name = name

    async def get(self) -> Credentials | None:
        return None


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, ("", "")),
        ({"A": "1", "B": "2"}, ("1", "2")),
        ({"A": "", "B": ""}, ("", "")),
    ],
)
def test_env_pair_both_or_neither(env: dict[str, str], expected: tuple[str, str]) -> None:
    assert env_pair(env, "A", "B") == expected


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"A": "1"}, "B is not set while the other of A/B is"),
        ({"B": "2"}, "A is not set while the other of A/B is"),
    ],
)
def test_env_pair_half_set_names_the_missing_one(env: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        env_pair(env, "A", "B")
