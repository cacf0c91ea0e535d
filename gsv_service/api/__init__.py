"""HTTP layer: one router per resource. Handlers only call the task service."""
