"""Workspaces: persistent sandboxed rooms per team or pipeline (backend.py says the contract)."""
