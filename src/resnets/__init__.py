"""resnets: every residual network of the papers, a fast training engine, studies, export."""

from resnets.models import create_model, list_models, list_weights, load_pretrained

__version__ = "0.1.0"

__all__ = ["__version__", "create_model", "list_models", "list_weights", "load_pretrained"]
