"""Validation: the reference (``reference``), one target against it (``harness``), metrics and gates."""
