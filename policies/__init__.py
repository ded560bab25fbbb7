"""Learned models (affordance value functions, success detectors, multimodal encoders) and their configs."""
