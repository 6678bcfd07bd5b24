"""The append-only event log, its projections and replay. Knows nothing of the rest."""
