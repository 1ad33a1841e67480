"""The mechanism: loading, validation, planning, reconciling, compiling, running."""
