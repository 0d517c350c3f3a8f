"""The web layer's machinery: the exporter-toolkit web config file, TLS, basic auth, HTTP parsing and the server loop.

http.py holds the exporter's own routes and `serve()`; everything here knows nothing about metrics.
"""
