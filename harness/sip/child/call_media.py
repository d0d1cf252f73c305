"""What a call does with its audio: the media plan, and the conference-bridge wiring that carries it out.

:class:`CallMedia` is the audio half of :class:`harness.sip.child.call.PartyCall`: on every media change
(answer, hold, resume; a re-INVITE recreates the stream, so everything reconnects to the new port) it
connects the player, the recorders, a bridged call and the echo, and it starts and stops them on command.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.sip.child.pjsua import MEDIA_STATUS, pj
from harness.sip.child.process import ChildProcess, CommandError
from harness.sip.protocol import LIMITS

__all__ = ["CallMedia", "MediaPlan"]


@dataclass
class MediaPlan:
    """What to do with a call's audio once media is active."""

    play: str | None = None
    loop: bool = False
    record: str | None = None
    hold_mute: bool = True  # a phone stops sending its microphone while it holds a call
    hold_music: str | None = None  # ...and may play music on hold instead
    echo: bool = False  # send back what the call receives, as a PBX's echo-test number does


class CallMedia:
    """A call's audio: mixed into the call class before ``pj.Call``, whose methods it uses."""

    child: ChildProcess
    cid: str
    done: bool
    plan: MediaPlan
    player: Any
    hold_player: Any
    recorder: Any
    probes: dict[str, Any]  #: extra recordings (``record`` command), by path
    bridged: CallMedia | None
    on_hold: bool
    recorded: str | None
    media_index: int

    if TYPE_CHECKING:  # brought by pj.Call

        def getInfo(self) -> Any: ...

        def getStreamInfo(self, index: int) -> Any: ...

        def getAudioMedia(self, index: int) -> Any: ...

    def init_media(self, plan: MediaPlan) -> None:
        self.plan = plan
        self.player = None
        self.hold_player = None
        self.recorder = None
        self.probes = {}
        self.bridged = None
        self.on_hold = False
        self.recorded = None

    def onCallMediaState(self, prm: Any) -> None:
        try:
            self._media_changed()
        except pj.Error as exc:
            self.child.emit("error", call=self.cid, message=f"media set-up failed: {exc.info()}")

    def _media_changed(self) -> None:
        ci = self.getInfo()
        for mi in ci.media:
            if mi.type != pj.PJMEDIA_TYPE_AUDIO:
                continue
            status = MEDIA_STATUS.get(mi.status, str(mi.status))
            try:
                si = self.getStreamInfo(mi.index)
                codec, remote = si.codecName, si.remoteRtpAddress
            except pj.Error:
                codec, remote = "", ""
            self.child.emit("media_state", call=self.cid, status=status, codec=codec, remote_rtp=remote,
                            dir=int(mi.dir))
            if mi.status in (pj.PJSUA_CALL_MEDIA_ACTIVE, pj.PJSUA_CALL_MEDIA_REMOTE_HOLD,
                             pj.PJSUA_CALL_MEDIA_LOCAL_HOLD):
                self.media_index = mi.index
                am = self.getAudioMedia(mi.index)
                holding = mi.status == pj.PJSUA_CALL_MEDIA_LOCAL_HOLD
                # a re-INVITE (hold/resume) recreates the stream: everything reconnects to the new port
                if holding and self.plan.hold_mute:
                    self.on_hold = True
                    if self.player is not None:
                        self.player.stopTransmit(am)
                    if self.bridged is not None:
                        self.bridged.audio().stopTransmit(am)
                    if self.plan.hold_music and self.hold_player is None:
                        self.hold_player = pj.AudioMediaPlayer()
                        self.hold_player.createPlayer(self.plan.hold_music, 0)
                        self.hold_player.startTransmit(am)
                else:
                    self.on_hold = False
                    self.hold_player = None
                    if self.plan.play and self.player is None:
                        self.start_player()
                    elif self.player is not None:
                        self.player.startTransmit(am)
                    if self.bridged is not None:
                        self.connect_bridge()
                    if self.plan.echo:
                        am.startTransmit(am)
                if self.plan.record and self.recorder is None:
                    self.start_recorder()
                elif self.recorder is not None:
                    am.startTransmit(self.recorder)
                for rec in self.probes.values():
                    am.startTransmit(rec)
            break

    def audio(self) -> Any:
        return self.getAudioMedia(getattr(self, "media_index", -1))

    # ---- bridge: two calls' audio both ways -------------------------------------------------------
    def connect_bridge(self) -> None:
        other = self.bridged
        if other is None or other.done or self.done:
            return
        mine, theirs = self.audio(), other.audio()
        mine.startTransmit(theirs)
        theirs.startTransmit(mine)

    def disconnect_bridge(self) -> None:
        other, self.bridged = self.bridged, None
        if other is None:
            return
        other.bridged = None
        if not other.done and not self.done:
            with contextlib.suppress(pj.Error):
                self.audio().stopTransmit(other.audio())
                other.audio().stopTransmit(self.audio())

    # ---- player -----------------------------------------------------------------------------------
    def start_player(self) -> None:
        if self.plan.play is None:
            return
        if self.child.players >= LIMITS["max_players"]:
            self.child.emit("warning", call=self.cid, message="player limit reached; not playing")
            return
        self.stop_player()
        player = pj.AudioMediaPlayer()
        player.createPlayer(self.plan.play, 0 if self.plan.loop else pj.PJMEDIA_FILE_NO_LOOP)
        self.child.players += 1
        self.player = player
        player.startTransmit(self.getAudioMedia(getattr(self, "media_index", -1)))
        self.child.emit("playing", call=self.cid, wav=self.plan.play)

    def stop_player(self) -> None:
        if self.player is not None:
            self.player = None
            self.child.players -= 1

    # ---- recorders: the call's own (media plan) and extra ones (``record`` command) ---------------
    def start_recorder(self) -> None:
        if self.plan.record is None:
            return
        path = self.plan.record.replace("{call}", self.cid)
        self.recorder = self._new_recorder(path)
        self.recorded = path
        self.child.emit("recording", call=self.cid, path=path)

    def _new_recorder(self, path: str) -> Any:
        rec = pj.AudioMediaRecorder()
        rec.createRecorder(path)
        self.child.silence.startTransmit(rec)
        self.audio().startTransmit(rec)
        return rec

    def start_probe(self, path: str) -> None:
        if path in self.probes:
            raise CommandError(f"already recording to {path}")
        self.probes[path] = self._new_recorder(path)

    def stop_probe(self, path: str) -> str:
        if self.probes.pop(path, None) is None:
            raise CommandError(f"no recording to {path} on call {self.cid}")
        self.child.pump(0.3)  # removal from the conference bridge is asynchronous
        return path

    def stop_probes(self) -> None:
        self.probes.clear()

    def stop_recorder(self, pump: bool = True) -> str | None:
        if self.recorder is None:
            return self.recorded
        self.recorder = None  # deleting the recorder writes the WAV header
        if pump:
            self.child.pump(0.3)  # removal from the conference bridge is asynchronous
        return self.recorded
