"""The one server interceptor: every RPC's outcome as one structured log line and in the metrics (method,
code, duration), and errors as status codes.

A handler raises :mod:`s3csi.errors` (mapped by :func:`s3csi.csi.errors.status_code`); anything else is
a bug, answered INTERNAL with the traceback logged, so the CO never sees UNKNOWN. Requests are logged
only through :func:`s3csi.csi.redaction.redact`, and only with ``--debug``: the spec says mount flags
may be sensitive too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import Message

from s3csi.csi.errors import status_code
from s3csi.csi.redaction import redact
from s3csi.errors import S3csiError
from s3csi.metrics.node import NodeMetrics

log = logging.getLogger(__name__)

UnaryHandler = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
# Polled every few seconds by the liveness probe and the sidecars: their successes are DEBUG.
_QUIET_SERVICES = frozenset({"csi.v1.Identity"})


class RequestInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, metrics: NodeMetrics | None = None) -> None:
        self._metrics = NodeMetrics() if metrics is None else metrics

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        return grpc.unary_unary_rpc_method_handler(
            _logged(handler_call_details.method, handler.unary_unary, self._metrics),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def _logged(method: str, behaviour: UnaryHandler, metrics: NodeMetrics) -> UnaryHandler:
    service, _, rpc = method.strip("/").partition("/")

    async def handle(request: Message, context: grpc.aio.ServicerContext) -> Any:
        started = time.monotonic()
        code, error, response = grpc.StatusCode.OK, "", None
        try:
            response = await behaviour(request, context)
            return response
        except S3csiError as exc:
            code, error = status_code(exc), str(exc)
            if code is grpc.StatusCode.INTERNAL:
                log.error("%s failed", rpc, exc_info=True)
            await context.abort(code, error)
        except asyncio.CancelledError:
            code, error = grpc.StatusCode.CANCELLED, "cancelled"
            raise
        except Exception as exc:
            code, error = grpc.StatusCode.INTERNAL, f"internal error in {rpc}: {type(exc).__name__}"
            log.error("%s failed", rpc, exc_info=True)
            await context.abort(code, error)
        finally:
            seconds = time.monotonic() - started
            metrics.observe_call(rpc, code.name, seconds)
            _log_outcome(
                service=service,
                rpc=rpc,
                request=request,
                response=response,
                code=code,
                error=error,
                seconds=seconds,
            )

    return handle


def _log_outcome(
    *,
    service: str,
    rpc: str,
    request: Message,
    response: Any,
    code: grpc.StatusCode,
    error: str,
    seconds: float,
) -> None:
    fields: dict[str, Any] = {"rpc": rpc, "code": code.name, "duration_ms": round(seconds * 1000, 1)}
    volume_id = getattr(request, "volume_id", "") or _created_volume_id(response)
    for key, value in (
        ("volume_id", volume_id),
        ("volume_name", getattr(request, "name", "")),
        ("target_path", getattr(request, "target_path", "")),
        ("error", error),
    ):
        if value:
            fields[key] = value
    if code is grpc.StatusCode.OK:
        level = logging.DEBUG if service in _QUIET_SERVICES else logging.INFO
    else:
        level = logging.WARNING
    if log.isEnabledFor(logging.DEBUG):
        fields["request"] = redact(request)
    log.log(level, "%s %s", rpc, code.name, extra=fields)


def _created_volume_id(response: Any) -> str:
    volume = getattr(response, "volume", None)
    return str(getattr(volume, "volume_id", "")) if volume is not None else ""
