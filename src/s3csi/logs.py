"""Process-wide logging set-up: one line per record, as text or JSON (``--log-format``)."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, Literal

LogFormat = Literal["text", "json"]

# Attributes every LogRecord has; anything else was passed through ``extra=`` and is structured data.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the ``extra`` fields, and any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS})
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


# Control characters (C0, DEL, C1) and the Unicode line and paragraph separators, as Python escapes them.
_ESCAPES = {code: repr(chr(code))[1:-1] for code in (*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029)}


def escape_controls(text: str) -> str:
    """``text`` with every control character written as its escape (``\\n``, ``\\x1b``, …): a volume id,
    path or error message sent by a CSI caller must not start a line of its own in the log, nor move
    the terminal's cursor."""
    return text.translate(_ESCAPES)


class TextFormatter(logging.Formatter):
    """``time level logger: message key=value …`` with the ``extra`` fields appended.

    One record is one line: the message and every field have their control characters escaped. A
    traceback follows on lines of its own, each indented, so a line that starts at the left margin
    is always the start of a record."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record.message = escape_controls(record.getMessage())
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        line = self.formatMessage(record)
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS}
        if extras:
            line += " " + " ".join(
                f"{escape_controls(str(k))}={escape_controls(str(v))}" for k, v in extras.items()
            )
        if record.exc_info:
            traceback = self.formatException(record.exc_info)
            line += "".join(f"\n    {text}" for text in traceback.splitlines())
        if record.stack_info:
            line += "".join(f"\n    {text}" for text in self.formatStack(record.stack_info).splitlines())
        return line


def configure_logging(*, debug: bool = False, log_format: LogFormat = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    # botocore and aiohttp log request details (headers included) at DEBUG: keep them quiet.
    for noisy in ("botocore", "aiohttp", "urllib3", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
