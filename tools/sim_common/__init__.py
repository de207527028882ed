"""What the QuickBooks Online (``tools.qbo_sim``) and Xero (``tools.xero_sim``) simulators share; each
simulator keeps only what is specific to its API (payload shapes, auth, signatures, entity models).

Modules: ``jsonutil`` (JSON with exact Decimals), ``stats`` (per-account counters), ``errors`` (``SimError``),
``webhooks`` (batching, delivery, retries and delivery faults; a simulator supplies bodies and headers),
``control`` (``/sim`` plumbing: the handler decorator, bodies, ``?notify``, health, webhook fault config),
``oauth`` (redirects, client and bearer credentials), ``app`` (application wiring and ``serve``),
``client`` (the CLI drivers' HTTP call).
"""
