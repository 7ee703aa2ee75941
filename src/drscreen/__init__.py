"""drscreen: explainable diabetic-retinopathy screening from colour fundus photographs."""

__version__ = "0.1.0"
