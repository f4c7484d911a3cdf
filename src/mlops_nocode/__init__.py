"""MLOps No-Code Platform: describe ML pipelines once, run them anywhere."""

__version__ = "0.1.0"
API_VERSION = "mlops-nocode/v1"
