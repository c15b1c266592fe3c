"""The load tester behind ``masking-async load`` (see ``docs/load.md``), one job per module.

* ``timetable``: when each request is due (constant rate or k6-style ramping stages);
* ``plan``: what a run does (timetable, mix, bounds, thresholds);
* ``schedule``: the open-model sender that keeps the timetable and drains in bounded time;
* ``timing``: wire time per call, measured at the client's transport seam;
* ``recorder``: HDR histograms of latency, server and queued time, and the series over time;
* ``scenario``: the operations, over a pool of sessions with an explicit state machine;
* ``cleanup``: expiring every session the run made, retrying until done or out of time;
* ``runner``: one whole run (warm-up, load, drain, cleanup) with the time of each phase;
* ``thresholds`` and ``verdict``: pass/fail criteria and the exit status;
* ``report`` and ``html``: the text table, the JSON document and the HTML page.

Nothing is re-exported here, so that ``masking-async --help`` does not import the client.
"""
