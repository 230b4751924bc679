"""The core's own plugins, registered by :func:`corecall.plugins.load_plugins`.

They use the same hooks as third-party plugins and show in ``corecall plugins list``.
"""
