"""The onnxruntime-genai model builder with its quantizing save step streamed through disk.

Where the memory goes in the stock builder (Phi-3-mini, 7.6 GB bf16, ``-p int4``):
1. the PyTorch model is loaded (bf16, ~7.6 GB, pages of the mmapped safetensors);
2. every weight becomes an ``onnx_ir.LazyTensor`` that casts it to the graph's I/O dtype — fp32 for the
   CPU EP (2× the checkpoint), fp16 for DML;
3. at save time ``ir.to_proto`` materialises *all* of them into one in-memory ModelProto (~15 GB fp32 for
   CPU) while the PyTorch model is still alive, and ``MatMulNBitsQuantizer`` adds the int4 weights beside
   them; the float initializers are dropped only at the very end.
Peak: ~23.6 GB (CPU) / 17.9 GB (DML) on a 24 GiB machine.

What this changes (nothing else):
- the float graph is first written to a temporary ONNX file with external data, one tensor at a time
  (each LazyTensor is cast, written and freed);
- the PyTorch model is released and the graph is re-read from that file, its weights as memory-mapped
  external tensors;
- the stock quantize-and-save runs on that graph with the working directory set to the temporary folder,
  so the quantizer (``ir.from_proto(tensor).numpy()``) reads each float weight from disk when it
  quantizes it, and keeps only the int4 results in memory.
The quantizer sees the same float values in the same order, so the output is the same bytes (checked by
the tests on the embedded model and by the benchmark on the Phi-3-mini shape). Cost: a temporary file as
large as the float graph (~15 GB for Phi-3-mini on CPU, ~7.6 GB for DML), deleted afterwards.
"""

from __future__ import annotations

import gc
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


def install(tmp_dir: str | Path) -> None:
    import importlib

    import onnx_ir as ir
    import onnxruntime_genai.models  # noqa: F401  (puts the builder's folder on sys.path)

    # builder.py imports its classes as the top-level package `builders`, a different module object from
    # `onnxruntime_genai.models.builders`: patch the one it uses.
    base = importlib.import_module("builders.base")
    stock_save = base.Model.save_model
    tmp_dir = Path(tmp_dir).resolve()

    def save_model(self, out_dir):
        quantized_types = {ir.DataType.INT4, ir.DataType.UINT4, ir.DataType.INT8, ir.DataType.UINT8}
        already_qdq = self.quant_type is not None and self.quant_attrs["use_qdq"]
        if self.onnx_dtype not in quantized_types or already_qdq:
            return stock_save(self, out_dir)  # float graphs are already saved tensor by tensor

        float_dir = tmp_dir / "float-graph"
        float_dir.mkdir(parents=True, exist_ok=True)
        float_path = float_dir / "float.onnx"
        print(f"low-memory: streaming the float graph to {float_path}", flush=True)
        ir.save(self.model, str(float_path), external_data="float.onnx.data", size_threshold_bytes=0)
        # Release the PyTorch weights and the lazily-cast graph; re-read the graph with mmapped weights.
        self.weights = None
        self.model = None
        gc.collect()
        self.model = ir.load(str(float_path))
        cwd = os.getcwd()
        os.chdir(float_dir)  # the quantizer resolves external data relative to the working directory
        try:
            return stock_save(self, str(Path(cwd, out_dir).resolve()) if not os.path.isabs(out_dir) else out_dir)
        finally:
            os.chdir(cwd)

    base.Model.save_model = save_model
