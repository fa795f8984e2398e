"""The outside world: policy backends, reflector clients, environments, trace importers."""
