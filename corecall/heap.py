"""The serving process's heap: what start-up made is moved out of the garbage collector's way.

Everything made at start-up (modules, plugins, phonenumbers' metadata, Telethon, the store's
connections) lives as long as the process. A full collection runs on the event loop with
every ``/call`` waiting behind it and walks every tracked object: 50-80 ms of CPU for such a
heap (measured, issue 11), ~0 once it is frozen. ``corecall run`` freezes it when it is
ready to serve, and the benchmarks of the ``/call`` path do the same after their warm-up, so
that they measure the process as it serves.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Collect once, then move every object alive now to the permanent generation
    (:func:`gc.freeze`): later collections walk only what was made since."""
    gc.collect()
    gc.freeze()


def thaw_startup_heap() -> None:
    """Give the frozen objects back to the collector (serving ended; tests serve
    in-process and go on)."""
    gc.unfreeze()
