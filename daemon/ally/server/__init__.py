"""The local daemon: a websocket service on 127.0.0.1 for the paired browser extension (see daemon/PROTOCOL.md).

Entry points: ``ally.server.app.create_app`` / ``start_server``; the protocol is ``ally.server.protocol``.
"""
