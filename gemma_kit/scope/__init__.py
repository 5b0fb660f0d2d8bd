"""Gemma Scope: JumpReLU sparse autoencoders read, splice and steer a running Gemma."""

from gemma_kit.scope.activations import site_activations
from gemma_kit.scope.attach import attach
from gemma_kit.scope.jumprelu import JumpReLUSAE
from gemma_kit.scope.loading import load_sae, save_sae
from gemma_kit.scope.metrics import evaluate
from gemma_kit.scope.training import train_sae

__all__ = ["JumpReLUSAE", "attach", "evaluate", "load_sae", "save_sae", "site_activations", "train_sae"]
