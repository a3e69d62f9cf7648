"""onnxruntime-genai's model builder as the ONNX Runtime GenAI family runs it (the family decides the command).

- ``run``: the builder in a child process on the local source, stock or low-memory;
- ``child``: that child's entry point; ``lowmem``: the builder with its quantizing save streamed through disk;
- ``graph``: operator counts and providers read back from the built model (``genai_config.json``).
"""
