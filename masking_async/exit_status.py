"""The exit statuses every command shares; each command adds its own (batch 3-5, load 3 and 99)."""

from __future__ import annotations

from typing import Final

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_UNREACHABLE", "EXIT_USAGE"]

#: Everything asked was done.
EXIT_OK: Final = 0
#: Some of it was not: failed rows, a load not delivered, a server that cannot be reached.
EXIT_FAILED: Final = 1
#: Bad usage or input, said in one line; nothing was sent.
EXIT_USAGE: Final = 2
#: The server could not be reached at all (nothing listening, no such host, TLS refused):
#: nothing was sent, nothing can have been applied.
EXIT_UNREACHABLE: Final = 6
#: Ctrl-C or SIGTERM.
EXIT_INTERRUPTED: Final = 130
