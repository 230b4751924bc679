"""The corecall Asterisk lab (a real Asterisk plus sipp carriers on loopback) and its
event recorder, as an installable package: ``corecall_lab.lab`` (the :class:`Lab` and the
``corecall-lab`` command), ``corecall_lab.record_events`` (``corecall-lab-record``).
"""
