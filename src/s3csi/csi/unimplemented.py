"""Servicer methods for the RPCs s3csi does not implement: UNIMPLEMENTED, as the spec asks of an RPC
whose capability is not advertised."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from s3csi.csi.errors import Unimplemented

Handler = Callable[[Any, Any, grpc.aio.ServicerContext], Awaitable[Any]]


def unimplemented(rpc: str) -> Handler:
    async def handler(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        raise Unimplemented(f"{rpc} is not implemented by this driver")

    handler.__name__ = handler.__qualname__ = rpc
    return handler
