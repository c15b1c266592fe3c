"""The session pool's state machine, walked move by move against a real emulator."""

from __future__ import annotations

import pytest

from masking_async.client import ClientOptions, MaskingClient, RateLimit, RetryPolicy
from masking_async.emulator import DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN, Emulator
from masking_async.errors import NotFoundError
from masking_async.load.scenario import PoolError, SessionPool, State

ALL_MOVES = {
    (None, State.ACTIVE),
    (State.ACTIVE, State.EXPIRING),
    (State.ACTIVE, State.EXPIRED),
    (State.EXPIRING, State.EXPIRED),
    (State.EXPIRING, State.STRANDED),
    (State.STRANDED, State.EXPIRED),
}


def _client(emulator: Emulator) -> MaskingClient:
    options = ClientOptions(rate_limit=RateLimit.off(), retry=RetryPolicy.none())
    return MaskingClient(
        DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN, base_url=emulator.base_url, options=options
    )


def _reach(pool: SessionPool, uuid: str, state: State | None) -> None:
    path = {
        None: [],
        State.ACTIVE: [State.ACTIVE],
        State.EXPIRING: [State.ACTIVE, State.EXPIRING],
        State.EXPIRED: [State.ACTIVE, State.EXPIRED],
        State.STRANDED: [State.ACTIVE, State.EXPIRING, State.STRANDED],
    }[state]
    for step in path:
        pool.move(uuid, step)


@pytest.mark.parametrize("start", [None, *State])
@pytest.mark.parametrize("to", list(State))
async def test_every_move_is_allowed_or_refused_by_the_table(
    masking_emulator: Emulator, start: State | None, to: State
) -> None:
    """Each (from, to) pair is made exactly when the transition table lists it."""
    async with _client(masking_emulator) as client:
        pool = SessionPool(client)
        _reach(pool, "s-1", start)
        if (start, to) in ALL_MOVES:
            pool.move("s-1", to)
            assert pool.state("s-1") is to
        else:
            with pytest.raises(PoolError):
                pool.move("s-1", to)
            assert pool.state("s-1") is start


async def test_the_run_moves_sessions_through_the_table(masking_emulator: Emulator) -> None:
    """Creates make ACTIVE sessions, an expire ends one, and a 404 on expire ends it too."""
    async with _client(masking_emulator) as client:
        pool = SessionPool(client, seed=4)
        for _ in range(3):
            await pool.perform("create")
        assert len(pool) == pool.created == 3
        await pool.perform("expire")
        assert len(pool) == len(pool.unclean()) == 2
        await pool.perform("expire")
        await pool.perform("expire")
        assert pool.unclean() == []
        unknown = "00000000-0000-4000-8000-000000000000"  # not at the server: expire gets 404
        pool.move(unknown, State.ACTIVE)
        with pytest.raises(NotFoundError):
            await pool.perform("expire")
        assert pool.state(unknown) is State.EXPIRED
        assert pool.close() == []
