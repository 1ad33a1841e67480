"""Semantic checks over loaded manifests: references, graphs, templates, scripts."""
