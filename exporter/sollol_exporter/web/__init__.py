"""The web layer: the exporter's routes (routes.py, with `serve()`) over the HTTP machinery (the exporter-toolkit web
config file, TLS, basic auth, rate limit, HTTP parsing, the server loop). Only routes.py knows about metrics.
"""
