"""The contracts layer: what every other part of the harness agrees on, importing nothing else of it.

- :mod:`.errors`: the one exception tree and ``ExitCode``;
- :mod:`.verdict`, :mod:`.results`: a check's verdict, and the run and scenario results (``results.json``);
- :mod:`.thresholds`: every threshold's default and its validation (audio, calls and system, health);
- :mod:`.target`: the target profile (a PBX, its accounts, numbers, behaviour);
- :mod:`.settings`: the one settings object for every ``HARNESS_*`` variable;
- :mod:`.sipmsg`, :mod:`.siplog`: the SIP message parser, the one reader of a party's pjsua log and the one
  credential masker; :mod:`.sdp`: the one SDP parser; :mod:`.rtp`: RTP statistics;
- :mod:`.yamlsrc`, :mod:`.fixtures`, :mod:`.logtail`: reading files with line numbers, finding audio fixtures,
  the last lines of a log.

The layers above it (``docs/architecture.md``): sip, lab, probes, audio, health; then scenarios, load,
findings, report; then the CLI. ``lint-imports`` (pyproject.toml) fails the build on a back-edge.
"""
