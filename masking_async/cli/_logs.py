"""Log lines on stderr: text for people, or one JSON object per line for a log collector.

The JSON formatter is a few lines over ``json.dumps``; a library for it would add a dependency
for less code than its configuration. Masking of phone numbers happens where lines are made
(the client), so both formats carry the same masked text.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Final

__all__ = ["LOG_FORMATS", "JSONFormatter", "configure_logging"]

LOG_FORMATS: Final = ("text", "json")
_TEXT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JSONFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message"}`` (plus ``error`` with a traceback) per line."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line)


def configure_logging(verbosity: int, fmt: str) -> None:
    """WARNING by default, INFO with -v, DEBUG with -vv; replaces any handler set before."""
    handler = logging.StreamHandler()
    handler.setFormatter(JSONFormatter() if fmt == "json" else logging.Formatter(_TEXT))
    logging.basicConfig(
        level=logging.WARNING - 10 * min(verbosity, 2), handlers=[handler], force=True
    )
