"""Testing your workflows: run them and look at everything they did, run
them on virtual time (``virtual_time()``: timeouts and delays take no wall
time), simulate them under a deterministic scheduler with faults, and let
hypothesis search the orderings (``anyflow.testing.strategies``).  See
docs/testing.md."""

from __future__ import annotations

from ._faults import Fault as Fault
from ._faults import InjectedFault as InjectedFault
from ._replay import Replay as Replay
from ._replay import ReplayedTick as ReplayedTick
from ._replay import describe as describe
from ._replay import replay as replay
from ._replay import replay_journal as replay_journal
from ._runner import TestRunResult as TestRunResult
from ._runner import WorkflowTestResult as WorkflowTestResult
from ._runner import WorkflowTestRunner as WorkflowTestRunner
from ._simulate import SimulationError as SimulationError
from ._simulate import Simulator as Simulator
from ._simulate import fault_point as fault_point
from ._simulate import simulate as simulate
from ._simulation import Schedule as Schedule
from ._simulation import Simulation as Simulation
from ._virtual_time import VirtualTime as VirtualTime
from ._virtual_time import virtual_time as virtual_time

__all__ = [
    "Fault",
    "InjectedFault",
    "Replay",
    "ReplayedTick",
    "Schedule",
    "Simulation",
    "SimulationError",
    "Simulator",
    "TestRunResult",
    "VirtualTime",
    "WorkflowTestResult",
    "WorkflowTestRunner",
    "describe",
    "fault_point",
    "replay",
    "replay_journal",
    "simulate",
    "virtual_time",
]
