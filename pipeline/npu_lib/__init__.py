"""The legacy intel-npu-acceleration-library route (``npu-lib-int4``), kept whole in this one package.

Upstream archived the library in 2025-04; the route is here because the seed project used it, and it can be
removed in one commit: this package, its entry in ``pipeline.targets.FAMILIES``, its target in params.yaml
and its command in ``pipeline.cli``.

- ``family``: the target family (settings, contract, the run record it ships);
- ``env``: the isolated virtual environment it needs (OpenVINO 2024.4, numpy<2, transformers 4.x);
- ``client`` / ``worker``: a worker process in that environment, spoken to one JSON line at a time;
- ``runner``: the worker behind the validation ``Runner`` interface.
"""
