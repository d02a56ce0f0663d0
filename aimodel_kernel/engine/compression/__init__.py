"""``%compress``: ``compress()`` (``entry``), checks against the original, the result and the
choice, recording, pruning, ONNX export with int8 quantization, and latency."""
