"""Serving: the committed model as the host application calls it, in-process or over a local endpoint.

serving_model.py    the open runtime session of the active slot (ServingModel)
prediction.py       what predict returns (Prediction) and raises (PredictError)
local_endpoint.py   HTTP over loopback or a Unix socket for programs that are not Python (LocalEndpoint)
"""
