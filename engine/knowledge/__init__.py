"""Knowledge bases: documents (sources.py) chunked (chunking.py), embedded (embedding.py) and
indexed incrementally (index.py) into Qdrant (qdrant.py); searched by the ``knowledge``
built-in and ``Engine.search_knowledge`` (search.py). Heavy libraries (qdrant_client,
onnxruntime, litellm) are imported inside functions only: ``plan`` imports sources.py alone.
"""
