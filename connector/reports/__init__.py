"""Read-side views of the ledger (status, courses, person, export) and their output formats."""
