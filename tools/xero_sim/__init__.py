"""Xero simulator: the Accounting API reads a sales channel needs (Invoices, CreditNotes, BankTransactions,
Items, Organisation), OAuth 2.0 with a consent page and ``/connections``, per-tenant rate limits and signed
webhooks with the "intent to receive" handshake, plus a ``/sim`` control API. Everything lives in memory.
See docs/xero.md for the behaviour it imitates and which parts of it are confirmed.

Modules: ``app`` (factory), ``config``, ``simulator`` (state object), ``store`` (organisations and documents),
``entities`` (JSON shapes and line arithmetic), ``specs`` (control bodies), ``api`` (Accounting API),
``query`` (``where``, ``Statuses``, ``IDs``, ``If-Modified-Since``, paging), ``oauth`` + ``tokens``, ``throttle``,
``faults`` (error bodies), ``webhooks`` + ``payloads``, ``control`` (``/sim``), ``demo``, ``cli`` (driver),
``timefmt``. What it shares with ``tools.qbo_sim`` (webhook delivery and retries, ``/sim`` plumbing, app wiring,
counters, JSON) is in ``tools.sim_common``.
"""
