"""Built-in models trained on scikit-learn's 8x8 digits (the offline default of the CLI)."""

from weightstats.models.digits import BUILTIN_MODELS, build_model, load_pretrained, training_info

__all__ = ["BUILTIN_MODELS", "build_model", "load_pretrained", "training_info"]
