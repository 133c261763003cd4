"""Whether the S3 endpoint answers at all: the readiness check of the CSI controller service.

One unsigned ``HEAD /`` with a short timeout. Any HTTP answer, a 403 included, means the endpoint is reached
(credentials are not what a readiness check judges: a bucket's own policy decides per request); no answer,
a refused connection, a name that does not resolve or a TLS failure means it is not."""

from __future__ import annotations

import ssl
from urllib.parse import urlsplit

import aiohttp

from s3csi.s3.settings import S3Settings

# Seconds for the whole request: under the 5 s the chart gives the livenessprobe sidecar's Probe call.
REACHABILITY_TIMEOUT_S = 3.0


def endpoint_root(settings: S3Settings) -> str:
    """The endpoint's root: the endpoint URL's scheme and host (S3Settings checked it), else AWS's
    regional endpoint."""
    if settings.endpoint_url is None:
        return f"https://s3.{settings.region}.amazonaws.com/"
    parts = urlsplit(settings.endpoint_url)
    return f"{parts.scheme}://{parts.netloc}/"


async def endpoint_problem(settings: S3Settings, timeout_s: float = REACHABILITY_TIMEOUT_S) -> str | None:
    """None when the endpoint answers; else why not, naming the endpoint."""
    url = endpoint_root(settings)
    ssl_context: ssl.SSLContext | bool = True
    try:
        if settings.ca_bundle and url.startswith("https:"):
            ssl_context = ssl.create_default_context(cafile=settings.ca_bundle)
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.head(url, ssl=ssl_context, allow_redirects=False),
        ):
            return None
    except TimeoutError:
        return f"S3 endpoint {url} did not answer within {timeout_s:g}s"
    except (aiohttp.ClientError, OSError, ssl.SSLError) as exc:
        return f"S3 endpoint {url} is not reachable: {exc.__class__.__name__}: {exc}"
