"""Thresholds and who may change them: the store and its fields, admin auth and sessions, the audit
trail, what-if previews, analytics."""
