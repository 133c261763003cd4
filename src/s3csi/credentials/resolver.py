"""Acting on a credential plan: the one place a publish's credentials are fetched (STS, the driver chain).

The pod-level exchange is cached per (role, STS endpoint, token): kubelet calls NodePublishVolume again
every minute or two (CSIDriver ``requiresRepublish``) with the same token until it rotates it, and the
keys STS gave for that token are reused until shortly before they expire. A new token, or keys close
to expiry, mean a new exchange. The cache holds digests of tokens, never tokens.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable

from s3csi.credentials.plan import (
    POD_SOURCE,
    AssumePodRole,
    CredentialInputs,
    CredentialPlan,
    UseDriver,
    UseSecret,
    no_sts_region,
    plan_credentials,
)
from s3csi.s3.credentials import CredentialProvider, Credentials
from s3csi.s3.sts import WebIdentityRequest, assume_role_with_web_identity, fresh, sts_endpoint

log = logging.getLogger(__name__)


class CredentialResolver:
    """``await resolve(inputs)``: the credentials one publish mounts with.

    ``driver`` is the driver's chain (:func:`s3csi.credentials.driver.driver_credential_provider`);
    ``sts_endpoint_url`` where STS is (:func:`s3csi.s3.sts.sts_endpoint_override` of the driver's
    environment); None: AWS's regional endpoint of the plan's STS region. ``ca_bundle``: the CAs for an
    https STS endpoint (the driver's ``AWS_CA_BUNDLE``, as for S3). ``instance_region``: asked for the STS
    region when neither the volume nor the driver names one (:func:`s3csi.s3.imds.instance_region`); None
    when instance metadata is disabled.
    """

    def __init__(
        self,
        driver: CredentialProvider,
        *,
        sts_endpoint_url: str | None = None,
        ca_bundle: str | None = None,
        clock: Callable[[], float] = time.time,
        instance_region: Callable[[], Awaitable[str | None]] | None = None,
    ) -> None:
        self.driver = driver
        self._instance_region = instance_region
        self._discovered_region: str | None = None
        self.sts_endpoint_url = sts_endpoint_url
        self.ca_bundle = ca_bundle
        self._clock = clock
        self._exchanged: dict[tuple[str, str, str], Credentials] = {}

    async def resolve(self, inputs: CredentialInputs) -> Credentials:
        return await self.act(self.plan(inputs))

    def plan(self, inputs: CredentialInputs) -> CredentialPlan:
        """:func:`~s3csi.credentials.plan.plan_credentials` at this resolver's time."""
        return plan_credentials(inputs, now=self._clock())

    async def act(self, plan: CredentialPlan) -> Credentials:
        if isinstance(plan, UseDriver):
            return await self.driver.get()
        if isinstance(plan, UseSecret):
            return plan.credentials
        return await self._assume(plan)

    async def _assume(self, plan: AssumePodRole) -> Credentials:
        endpoint = sts_endpoint(self.sts_endpoint_url, plan.sts_region or await self._discover_region())
        key = (plan.role_arn, endpoint, hashlib.sha256(plan.token.encode()).hexdigest())
        now = self._clock()
        cached = self._exchanged.get(key)
        if cached is not None and fresh(cached, now):
            return cached
        request = WebIdentityRequest(
            endpoint=endpoint,
            role_arn=plan.role_arn,
            session_name=plan.session_name,
            token=plan.token,
            ca_bundle=self.ca_bundle,
        )
        credentials = await assume_role_with_web_identity(request, source=POD_SOURCE)
        self._exchanged = {k: v for k, v in self._exchanged.items() if fresh(v, now)}
        self._exchanged[key] = credentials
        return credentials

    async def _discover_region(self) -> str:
        """The node's region from the instance metadata service, asked until it answers once."""
        if self._discovered_region is None and self._instance_region is not None:
            self._discovered_region = await self._instance_region()
            if self._discovered_region is not None:
                log.info(
                    "STS region %s from the instance metadata service (the volume sets neither stsRegion "
                    "nor --region, and the driver has no region configured)",
                    self._discovered_region,
                )
        if self._discovered_region is None:
            raise no_sts_region()
        return self._discovered_region
