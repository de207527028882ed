"""QuickBooks Online simulator: the QBO Accounting API (entity reads and writes, query, CDC), OAuth 2.0,
throttling and signed webhooks (legacy and CloudEvents), plus a ``/sim`` control API.
Everything lives in memory. See docs/quickbooks-api.md for the behaviour it imitates.

Modules: ``app`` (factory), ``config``, ``simulator`` (state object), ``store`` (companies),
``entities`` (JSON shapes), ``specs`` (control bodies), ``api`` (QBO endpoints), ``writes`` (QBO
request bodies -> specs), ``query``, ``cdc``,
``oauth`` + ``tokens``, ``throttle``, ``faults`` (error bodies), ``webhooks`` + ``payloads``,
``control`` (``/sim``), ``demo``, ``cli`` (driver), ``timefmt``. What it shares with ``tools.xero_sim``
(webhook delivery and retries, ``/sim`` plumbing, app wiring, counters, JSON) is in ``tools.sim_common``.
"""
