"""corecall's Asterisk AMI trunk driver, as a plugin (distribution ``corecall-trunk-asterisk``).

Importing this package imports nothing else: the lab and the render use
:mod:`corecall_asterisk.render`, :mod:`corecall_asterisk.names` and
:mod:`corecall_asterisk.actions` without loading panoramisk. The module layout is in
``plugins/trunk_asterisk/README.md``; the plugin entry point is :mod:`corecall_asterisk.plugin`.
"""
