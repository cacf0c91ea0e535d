"""Stub of nltk.data: resources are looked up in NLTK_DATA when it is set, else in the double's
stub_site/nltk_data (real nltk searches NLTK_DATA first, then sys.prefix/nltk_data and others)."""

import os

_DEFAULT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "nltk_data")
path = [p for p in os.environ.get("NLTK_DATA", "").split(os.pathsep) if p] or [_DEFAULT]


def find(resource_name):
    for root in path:
        candidate = os.path.join(root, *resource_name.split("/"))
        if os.path.exists(candidate):
            return candidate
    raise LookupError(f"Resource {resource_name} not found. Searched in: {path}")
