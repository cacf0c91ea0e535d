"""The page the service serves at / (tasks, live training, review, results): plain ES modules and CSS
in static/, served by the service itself (no build step, no CDN)."""

from gsv_service.web.router import install

__all__ = ["install"]
