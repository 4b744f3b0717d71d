"""Training: labelled points and imagery in, a verified ONNX model and an honest accuracy report out."""
