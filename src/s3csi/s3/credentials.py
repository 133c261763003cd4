"""Where the keys that sign requests come from, asked again before every request.

Sources are small classes with one method, ``async def get() -> Credentials | None`` (None: "I have
nothing"); a :class:`CredentialChain` asks them in order. Here: the environment, then the shared
credentials and config files (:func:`default_credential_provider`, all a Mountpoint Pod may use). The
driver's own chain adds web identity (``sts.py``) and instance metadata (``imds.py``) after them
(``s3csi.credentials.driver``).
"""

from __future__ import annotations

import configparser
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from s3csi.errors import InvalidArgument, PermissionDenied

log = logging.getLogger(__name__)

DEFAULT_PROFILE = "default"


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)
    # Epoch seconds after which these stop working; None when they do not expire.
    expiry: float | None = None
    # Where they came from, for messages: "environment", "shared-credentials-file", …
    source: str = "static"


class CredentialProvider(Protocol):
    async def get(self) -> Credentials:
        """The credentials to sign the next request with. Raises PermissionDenied or InvalidArgument,
        naming where it looked (never a value), when there are none."""
        ...


class CredentialSource(Protocol):
    name: str

    async def get(self) -> Credentials | None: ...


class StaticCredentials:
    """Fixed keys, e.g. from a test or a flag-free embedding."""

    def __init__(self, credentials: Credentials) -> None:
        self._credentials = credentials

    async def get(self) -> Credentials:
        return self._credentials


def env_pair(env: Mapping[str, str], first: str, second: str) -> tuple[str, str]:
    """Two variables that go together: both set, or neither (then two empty strings)."""
    values = env.get(first, ""), env.get(second, "")
    if bool(values[0]) != bool(values[1]):
        missing = second if values[0] else first
        raise InvalidArgument(f"{missing} is not set while the other of {first}/{second} is")
    return values


class EnvironmentCredentials:
    """``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` and ``AWS_SESSION_TOKEN``, read when built."""

    name = "environment"

    def __init__(self, env: Mapping[str, str]) -> None:
        access_key_id, secret_access_key = env_pair(env, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
        self._credentials = (
            Credentials(
                access_key_id=access_key_id,
                secret_access_key=secret_access_key,
                session_token=env.get("AWS_SESSION_TOKEN") or None,
                source=self.name,
            )
            if access_key_id
            else None
        )

    async def get(self) -> Credentials | None:
        return self._credentials


@dataclass(frozen=True)
class _FileVersion:
    inode: int
    size: int
    mtime_ns: int


def _version(path: str) -> _FileVersion | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return _FileVersion(st.st_ino, st.st_size, st.st_mtime_ns)


class SharedCredentialsFile:
    """The profile's keys in the shared credentials file, else in the config file (``[profile NAME]``).

    Each ``get`` stats both files (a few microseconds) and re-reads them when inode, size or mtime
    changed, so keys rotated on disk (a Kubernetes secret update, ``aws configure``) are used from
    the next request on, without a remount.
    """

    name = "shared-credentials-file"

    def __init__(self, credentials_path: str, config_path: str, profile: str = DEFAULT_PROFILE) -> None:
        self.credentials_path = credentials_path
        self.config_path = config_path
        self.profile = profile
        self._seen: tuple[_FileVersion | None, _FileVersion | None] | None = None
        self._credentials: Credentials | None = None

    async def get(self) -> Credentials | None:
        seen = (_version(self.credentials_path), _version(self.config_path))
        if seen != self._seen:
            self._credentials = self._read()
            self._seen = seen
        return self._credentials

    def _read(self) -> Credentials | None:
        found = self._read_section(self.credentials_path, self.profile)
        if found is None:
            section = self.profile if self.profile == DEFAULT_PROFILE else f"profile {self.profile}"
            found = self._read_section(self.config_path, section)
        return found

    def _read_section(self, path: str, section: str) -> Credentials | None:
        parser = configparser.RawConfigParser()
        try:
            with open(path, encoding="utf-8") as file:
                parser.read_file(file)
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError, configparser.Error) as exc:
            # configparser's messages quote the offending line, which may hold a key: name the file only.
            raise InvalidArgument(f"cannot read AWS credentials from {path}: {type(exc).__name__}") from None
        if not parser.has_section(section):
            return None
        values = parser[section]
        access_key_id = values.get("aws_access_key_id", "").strip()
        secret_access_key = values.get("aws_secret_access_key", "").strip()
        if not access_key_id and not secret_access_key:
            return None
        if not access_key_id or not secret_access_key:
            missing = "aws_secret_access_key" if access_key_id else "aws_access_key_id"
            raise InvalidArgument(f"profile {self.profile!r} in {path} has no {missing}")
        return Credentials(
            access_key_id=access_key_id,
            secret_access_key=secret_access_key,
            session_token=values.get("aws_session_token", "").strip() or None,
            source=self.name,
        )


class CredentialChain:
    """Asks each source in order, every time: the first with credentials wins. The source in use is
    logged (its name, never a value) when it is first used and whenever it changes."""

    def __init__(self, sources: Sequence[CredentialSource]) -> None:
        self.sources = list(sources)
        self._used: str | None = None

    async def get(self) -> Credentials:
        for source in self.sources:
            found = await source.get()
            if found is not None:
                if found.source != self._used:
                    self._used = found.source
                    log.info("AWS credentials from %s", found.source)
                return found
        tried = ", ".join(source.name for source in self.sources)
        raise PermissionDenied(
            f"no AWS credentials found (looked in: {tried}); set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
            "AWS_SHARED_CREDENTIALS_FILE/AWS_PROFILE, or use --no-sign-request for a public bucket"
        )


def default_credential_provider(env: Mapping[str, str]) -> CredentialChain:
    """The standard AWS order: environment variables, then the shared credentials/config files
    (``AWS_SHARED_CREDENTIALS_FILE``, ``AWS_CONFIG_FILE``, ``AWS_PROFILE``; ``~/.aws/`` by default)."""
    home = env.get("HOME") or os.path.expanduser("~")
    files = SharedCredentialsFile(
        credentials_path=env.get("AWS_SHARED_CREDENTIALS_FILE") or os.path.join(home, ".aws", "credentials"),
        config_path=env.get("AWS_CONFIG_FILE") or os.path.join(home, ".aws", "config"),
        profile=env.get("AWS_PROFILE") or env.get("AWS_DEFAULT_PROFILE") or DEFAULT_PROFILE,
    )
    # As in the AWS SDKs, keys in the environment win even over an AWS_PROFILE.
    return CredentialChain([EnvironmentCredentials(env), files])
