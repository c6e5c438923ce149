"""The performance benchmark of vertebral-cds: `python -m bench` (see README, "Performance")."""
