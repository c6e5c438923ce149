"""The database: engine and migrations, tables, the evaluation and feedback rows, the writer thread."""
