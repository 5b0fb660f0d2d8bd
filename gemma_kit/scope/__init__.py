"""Gemma Scope: JumpReLU sparse autoencoders read, splice and steer a running Gemma."""

from gemma_kit.scope.activations import site_activations
from gemma_kit.scope.jumprelu import JumpReLUSAE
from gemma_kit.scope.loading import load_sae

__all__ = ["JumpReLUSAE", "load_sae", "site_activations"]
