"""Helpers shared by the LiteRT (TensorFlow Lite) targets (tflite-cpu and, through Vela, the Ethos-U ones): the
ONNX op → TFLite operator table, dynamic-range quantization's reach, and the PT2E `int8-mixed` plan."""
