"""One operator per kind: provision, observe, teardown."""
