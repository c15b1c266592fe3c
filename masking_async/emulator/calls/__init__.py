"""The emulator's calls: a call's route and legs, the engine that moves them, their callbacks.

=================  ==============================================================================
``call``           :class:`Call`, :class:`Leg` and their states: routing and the timed plan
``config``         :class:`CallsConfig`: the phones' scripts, the tariff, the delivery policy
``engine``         :class:`CallEngine`: places calls, applies their steps on the clock
``session_calls``  what calls leave on a session (in-progress, interactions, totals)
``delivery``       signed callback delivery, in order per session, retried
``routes``         the calls' control plane under ``/emulator/``
``load``           calls at a steady rate, and how late their callbacks arrive
=================  ==============================================================================

Nothing is imported here, so that the store can import ``session_calls`` without the engine; the
emulator's public names are in :mod:`masking_async.emulator`.
"""
