"""The operator's side: the `hermitcrab` CLI, the Docker engine check and the image builder."""
