"""The LLM layer: model cards, requests, the wire format, limits, the runner, the response store, local models.

- :mod:`.cards`: model cards and panels (``configs/models``, ``configs/panels``), API keys;
- :mod:`.request`: a request, its canonical form and key, a panel's requests;
- :mod:`.wire`: request bodies, parsing responses, describing failures, redacting keys;
- :mod:`.limits`: client-side limits (concurrency, rate), token estimates;
- :mod:`.runner`: ``LLMRunner`` (replay or live, through the store), its plan and report;
- :mod:`.store` and :mod:`.runstore`: the append-only response store, and a run's store over the dataset;
- :mod:`.local` and :mod:`.llama_server`: local GGUF models and the llama.cpp server.

Import from the module that defines a name (``from valuelex.llm.runner import LLMRunner``); this
package re-exports nothing. It imports only ``valuelex.core`` (``tests/test_layers.py``).
"""
