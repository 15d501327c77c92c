"""Models and data from outside orthokd, for the analyses (landscape, diversity): torchvision / timm / module:factory
models and weights files (models), evaluation images from tensors, loaders or folders (data), and the logits of any
classifier's output (model_output)."""
