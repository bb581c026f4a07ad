"""Privacy rights (개인정보보호법): account erasure, pseudonymisation of personal fields, and retention.

``erasure``: deleting an account (what is withdrawn, cancelled, pseudonymised or deleted); ``pseudonymise``: the
personal fields of audit rows; ``retention``: the scheduled purge (``dolbom privacy purge``). docs/privacy.md says
what is kept, for how long and why.
"""
