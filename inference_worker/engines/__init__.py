"""Engines turn a prompt and an image into streamed text: the interface (``base``), a
batching wrapper around the transformers engine (``batching``) and vLLM (``vllm_engine``)."""
