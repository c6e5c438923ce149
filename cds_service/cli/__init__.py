"""The `vertebral-cds` command: serve, evaluate, thresholds, db and demo subcommands."""
