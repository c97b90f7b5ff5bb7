"""The web page, its chat proxy and history API."""
