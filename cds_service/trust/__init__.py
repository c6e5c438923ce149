"""Trusting CDS clients (CDS Hooks 2.0 §"Trusting CDS Clients"): the EHR's JWT, its keys, replays.

Kept free of imports here so that `settings` can import `trust.issuers` without a cycle.
"""
