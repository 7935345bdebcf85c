"""Engines turn a prompt and its images into streamed text: the interface (``base``), the
transformers engine (``transformers_engine``), a batching wrapper around it (``batching``),
vLLM (``vllm_engine``), and the process's engine as configured (``loading``)."""
