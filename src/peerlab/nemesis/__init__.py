"""Nemeses: faults over time, as serializable values on a seeded schedule (churn, ...)."""
