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
- every float weight is first written to a temporary external-data file, one tensor at a time (each
  LazyTensor is cast, written and freed), and the graph's initializers are pointed at that file;
- the PyTorch model is released;
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
import time
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
        t0 = time.monotonic()
        n_bytes = _spill_initializers(ir, self.model, float_dir, DATA_FILE)
        print(
            f"low-memory: {n_bytes / 1e9:.2f} GB of float weights written to disk in {time.monotonic() - t0:.1f} s",
            flush=True,
        )
        # The graph now refers to the weights on disk only: release the PyTorch model.
        self.weights = None
        gc.collect()
        cwd = os.getcwd()
        os.chdir(float_dir)  # the quantizer resolves external data relative to the working directory
        t1 = time.monotonic()
        try:
            return stock_save(self, str(Path(cwd, out_dir).resolve()) if not os.path.isabs(out_dir) else out_dir)
        finally:
            os.chdir(cwd)
            print(f"low-memory: quantized and saved in {time.monotonic() - t1:.1f} s", flush=True)

    base.Model.save_model = save_model


DATA_FILE = "float.onnx.data"


def _spill_initializers(ir, model, folder: Path, data_file: str) -> int:
    """Write every initializer's values to ``folder/data_file`` and point the graph at them.

    Each initializer is materialised once (a ``LazyTensor`` casts its PyTorch weight to the graph dtype),
    written as raw little-endian bytes and replaced by an ``ExternalTensor`` over that byte range, so only
    one weight is in memory at a time. Writing the buffers directly runs ~3× faster than ``ir.save`` (which
    copies every tensor through ``tobytes()``), and the values are the same bytes.
    """
    import numpy as np
    import torch

    total = 0
    with open(folder / data_file, "wb") as f:
        for value in model.graph.initializers.values():
            tensor = value.const_value
            if tensor is None or isinstance(tensor, ir.ExternalTensor):
                continue
            concrete = tensor._evaluate() if isinstance(tensor, ir.LazyTensor) else tensor
            raw = getattr(concrete, "raw", None)
            if hasattr(raw, "contiguous"):  # a torch tensor, often a transposed view: torch's blocked,
                raw = raw.contiguous()  # multi-threaded copy is ~4x faster than numpy's strided one
                array = raw.view(torch.uint16).numpy() if raw.dtype == torch.bfloat16 else raw.numpy()
            else:
                array = np.ascontiguousarray(concrete.numpy())
            offset = f.tell()
            f.write(memoryview(array).cast("B"))
            value.const_value = ir.ExternalTensor(
                data_file,
                offset,
                array.nbytes,
                tensor.dtype,
                shape=tensor.shape,
                name=tensor.name,
                base_dir=str(folder),
            )
            total += array.nbytes
            del concrete, array, tensor, raw
    return total
