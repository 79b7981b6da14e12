"""vae-serve: the REST service around the exported TorchScript VAE."""
