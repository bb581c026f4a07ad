"""A watcher of the waitlist's public transparency log, run by anyone on their own machine (``dolbom watch``):
signatures, consistency, its own copy of the entries, and the rank events re-checked from the log. Needs only
httpx, cryptography and the pure log formats of ``geo.admission.tlog``; never the server's database or code."""
