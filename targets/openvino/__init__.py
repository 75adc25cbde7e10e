"""Helpers shared by the OpenVINO targets (cpu-openvino, npu-openvino): what OpenVINO converts and runs, the
static shapes an NPU needs, and the NNCF `int8-mixed` plan."""
