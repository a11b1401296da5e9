"""Tools that make the protocol visible and testable, built on rawws' own frame reader and writer.

Each tool is one module with a command-line entry registered in ``rawws/__main__.py``: ``craft``
(a scriptable misbehaving peer, issue 18), ``trace`` and ``replay`` (a tracing proxy and a
capture replayer, issue 17). They sit above ``rawws.aio`` and ``rawws.sansio`` and nothing below
imports them.
"""
