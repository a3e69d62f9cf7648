"""Runners: generate from an artifact with its own runtime (``base.Runner``), chosen by ``dispatch.open_runner``.

- ``hf``: the reference, transformers in fp32;
- ``ov_genai``: OpenVINO IRs through openvino-genai (logits through OpenVINO Runtime);
- ``ort_genai``: ONNX Runtime GenAI models (the DirectML graph proven on the CPU provider where DML is absent).
"""
