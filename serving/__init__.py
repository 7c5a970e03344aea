"""Two-stage recommendations over the pushed retrieval and ranking models: recommend(), CLI and HTTP service."""
