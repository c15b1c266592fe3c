"""The objects of the API as frozen ``attrs`` classes: what the rest of the code sees.

Responses become these through the converter in :mod:`masking_async.wire`, which absorbs every
quirk of the wire (string booleans, ``"null"``, odd keys and timestamps); requests leave as plain
parameter dicts through :meth:`CreateSessionRequest.to_params`, checked by
:mod:`masking_async.rules` before they are sent.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import attrs

__all__ = [
    "CreateSessionRequest",
    "Interaction",
    "LegacySession",
    "PageMeta",
    "Session",
    "SessionPage",
    "UpdateSessionRequest",
]

Method = Literal["GET", "POST"]
Status = Literal["active", "in-progress", "expired"]


@attrs.frozen
class Interaction:
    """One call exchange within a session (at most two legs)."""

    first_party_resource_url: str | None = None
    second_party_resource_url: str | None = None
    recording_resource_url: str | None = None


@attrs.frozen
class Session:
    """A masking session as the API returns it; party numbers are normalised to E.164."""

    session_uuid: str
    first_party: str | None = None
    second_party: str | None = None
    virtual_number: str | None = None
    status: str = "active"
    duration: int | None = None
    call_time_limit: int | None = None
    ring_timeout: int | None = None
    initiate_call_to_first_party: bool | None = None
    record: bool | None = None
    record_file_format: str | None = None
    recording_callback_url: str | None = None
    recording_callback_method: str | None = None
    callback_url: str | None = None
    callback_method: str | None = None
    first_party_play_url: str | None = None
    second_party_play_url: str | None = None
    is_pin_authentication_required: bool | None = None
    generate_pin: bool | None = None
    generate_pin_length: int | None = None
    first_party_pin: str | None = None
    second_party_pin: str | None = None
    pin_prompt_play: str | None = None
    pin_retry: int | None = None
    pin_retry_wait: int | None = None
    incorrect_pin_play: str | None = None
    unknown_caller_play: str | None = None
    force_pin_authentication: bool | None = None
    create_session_with_single_party: bool | None = None
    subaccount: str | None = None
    created_time: datetime | None = None
    modified_time: datetime | None = None
    expiry_time: datetime | None = None
    last_interaction_time: datetime | None = None
    amount: Decimal | None = None
    total_call_count: int | None = None
    total_call_amount: Decimal | None = None
    total_call_billed_duration: int | None = None
    total_session_amount: Decimal | None = None
    interaction: tuple[Interaction, ...] = ()
    resource_uri: str | None = None
    #: Fields the spec does not name, kept as sent so nothing the server says is lost.
    extra: dict[str, Any] = attrs.field(factory=dict, eq=False, repr=False)
    #: Fields the server sent in a form the client could not read: left unset here, kept as
    #: sent in ``extra``. The answer was a success all the same (the change happened).
    unreadable: tuple[str, ...] = attrs.field(default=(), eq=False)

    @property
    def is_active(self) -> bool:
        return self.status != "expired"


@attrs.frozen(kw_only=True)
class LegacySession:
    """What the first version's create answers: the new session's id and number, no more.

    The session is an ordinary one: ``get_session(session_uuid)`` reads the whole of it.
    ``message`` and ``api_id`` are ``None`` when the session was adopted after a lost answer.
    """

    session_uuid: str
    virtual_number: str | None = None
    message: str | None = None
    api_id: str | None = None


@attrs.frozen
class PageMeta:
    """The ``meta`` of a list page; ``next``/``previous`` are URLs or ``None``."""

    limit: int
    offset: int
    total_count: int
    next: str | None = None
    previous: str | None = None


@attrs.frozen
class SessionPage:
    """One page of a list query (at most 20 sessions)."""

    meta: PageMeta
    objects: tuple[Session, ...]
    api_id: str | None = None


def _params(instance: Any) -> dict[str, Any]:
    return {k: v for k, v in attrs.asdict(instance, recurse=False).items() if v is not None}


@attrs.frozen(kw_only=True)
class CreateSessionRequest:
    """The arguments of a create; ``None`` means "not sent" so the server default applies."""

    first_party: str
    second_party: str | None = None
    geomatch: bool | None = None
    subaccount: str | None = None
    session_expiry: int | None = None
    call_time_limit: int | None = None
    ring_timeout: int | None = None
    initiate_call_to_first_party: bool | None = None
    callback_url: str | None = None
    callback_method: Method | None = None
    record: bool | None = None
    recording_callback_url: str | None = None
    record_file_format: Literal["mp3", "wav"] | None = None
    recording_callback_method: Method | None = None
    first_party_play_url: str | None = None
    second_party_play_url: str | None = None
    is_pin_authentication_required: bool | None = None
    generate_pin: bool | None = None
    generate_pin_length: int | None = None
    first_party_pin: str | None = None
    second_party_pin: str | None = None
    pin_prompt_play: str | None = None
    pin_retry: int | None = None
    pin_retry_wait: int | None = None
    incorrect_pin_play: str | None = None
    unknown_caller_play: str | None = None
    force_pin_authentication: bool | None = None
    create_session_with_single_party: bool | None = None
    virtual_number_cooloff_period: int | None = None

    def to_params(self) -> dict[str, Any]:
        """The JSON body: every argument that is set."""
        return _params(self)


@attrs.frozen(kw_only=True)
class UpdateSessionRequest:
    """The arguments of an update; only these may change on an active session."""

    session_expiry: int | None = None
    call_time_limit: int | None = None
    ring_timeout: int | None = None
    callback_url: str | None = None
    callback_method: Method | None = None
    record: bool | None = None
    recording_callback_url: str | None = None
    record_file_format: Literal["mp3", "wav"] | None = None
    recording_callback_method: Method | None = None
    first_party_play_url: str | None = None
    second_party_play_url: str | None = None
    first_party: str | None = None
    second_party: str | None = None

    def to_params(self) -> dict[str, Any]:
        """The JSON body: every argument that is set."""
        return _params(self)
