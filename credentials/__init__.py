"""The host's credential proxy: containers reach the model API through it and never hold the real secret."""
