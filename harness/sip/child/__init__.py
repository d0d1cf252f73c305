"""The SIP party's child process: one pjsua2 endpoint, driven over a pipe by :class:`harness.sip.party.Party`.

Run as ``python -m harness.sip.child`` (:mod:`.__main__`). Everything in this package runs in that process
only and loads pjsua2 (:mod:`.pjsua` refuses to be imported anywhere else): the parent imports nothing
from here, it speaks the protocol (:mod:`harness.sip.protocol`). The modules, lowest first:

- :mod:`.pjsua`: pjsua2 itself and the names the child gives its constants;
- :mod:`.process`: the process's machinery: events out, the command loop, timers, the teardown;
- :mod:`.stream_stats`: one stream's RTP/RTCP figures as the ``stats`` reply gives them;
- :mod:`.call_media`: what a call does with its audio (the media plan, players, recorders, bridges);
- :mod:`.call`: one call: its state, times, transfers and statistics;
- :mod:`.account`: one account: registration and incoming calls;
- :mod:`.commands`: the commands the parent sends, each checked against the wheel's limits.
"""
