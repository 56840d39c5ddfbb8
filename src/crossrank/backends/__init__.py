"""Inference backends (torch, ONNX Runtime, OpenVINO): each only runs the model's forward pass."""

import sys

# OpenVINO's model converter and NNCF send usage telemetry to Google Analytics unless the user opted out
# (a consent file in the home directory). Keeping their ``openvino_telemetry`` module from loading makes
# both fall back to their own no-op stubs, without writing into the user's home; it has no other effect.
# This runs before anything of crossrank can import OpenVINO. An application that imported the module
# itself (it opted in) is left alone.
sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]  # importing it raises ImportError
