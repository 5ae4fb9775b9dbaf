"""Exploration over the models: sweeps and their constraint language, best layout, sensitivity, validation."""
