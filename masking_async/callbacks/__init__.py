"""The receiving side of session callbacks: typed events, V3 signatures, an aiohttp receiver.

::

    async def handle(event: CallbackEvent) -> None:
        print(event.event_name, event.session_uuid, event.sequence_number)

    app = make_callback_app(handle, auth_token=AUTH_TOKEN, nonces=NonceCache())

See ``docs/callbacks.md``.
"""

from masking_async.callbacks._app import EventHandler, make_callback_app, request_params
from masking_async.callbacks._events import (
    RECORDING_ATTRIBUTES,
    RECORDING_EVENTS,
    STATUS_ATTRIBUTES,
    STATUS_EVENTS,
    CallbackEvent,
    CallbackFormatError,
    RecordingEvent,
    SessionEvent,
    parse_event,
)
from masking_async.callbacks._server import CallbackServer
from masking_async.callbacks._signature import (
    NONCE_HEADER,
    SIGNATURE_HEADER,
    SIGNATURE_MA_HEADER,
    NonceCache,
    compute_signature,
    signature_base,
    verify_signature,
)

__all__ = [
    "NONCE_HEADER",
    "RECORDING_ATTRIBUTES",
    "RECORDING_EVENTS",
    "SIGNATURE_HEADER",
    "SIGNATURE_MA_HEADER",
    "STATUS_ATTRIBUTES",
    "STATUS_EVENTS",
    "CallbackEvent",
    "CallbackFormatError",
    "CallbackServer",
    "EventHandler",
    "NonceCache",
    "RecordingEvent",
    "SessionEvent",
    "compute_signature",
    "make_callback_app",
    "parse_event",
    "request_params",
    "signature_base",
    "verify_signature",
]
