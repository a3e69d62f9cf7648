"""The OpenVINO IR toolbox shared by the OpenVINO target families (``openvino``, ``npu``).

Why one IR: ``optimum-cli export openvino`` loads and traces the whole PyTorch model again for every
variant (FP16, INT4, NPU INT4). Its INT4 path is itself "export a bf16 IR, then ``nncf.compress_weights``
on it"; doing that export once (stage ``ov-ir``) and compressing the IR per target gives the same
weights — measured: byte-identical ``openvino_model.bin`` and an XML that differs only in generated node
names — while the trace is paid once.

- ``export``: the one FP IR (optimum-intel's ``main_export``) with OpenVINO tokenizers;
- ``derive``: a target's variant of that IR (fp16 / fp32 / NNCF int8 / int4 / nf4);
- ``compress``: the exact ``nncf.compress_weights`` call optimum-cli makes, and offline calibration data;
- ``inspect``: what an IR really holds, read back from its constants.
The compression's knobs are a settings schema shared by both families: ``pipeline.targets.compression``.
"""

MODEL_XML = "openvino_model.xml"
MODEL_BIN = "openvino_model.bin"
TOKENIZER_FILES = (
    "openvino_tokenizer.xml",
    "openvino_tokenizer.bin",
    "openvino_detokenizer.xml",
    "openvino_detokenizer.bin",
)
