"""The embedded lab PBX (kamailio + rtpengine on loopback) and its built-in target profile."""

from harness.lab.config import LabConfig, lab_target
from harness.lab.stack import LabStack, LabStatus

__all__ = ["LabConfig", "LabStack", "LabStatus", "lab_target"]
