"""The 11 training steps. `registry.STEPS` is the ordered list; one module per group of steps."""
