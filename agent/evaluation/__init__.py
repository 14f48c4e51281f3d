"""Edge alarm evaluation: pure logic from readings and observations to alarm transitions and
telemetry samples (works offline; time is passed in, never read).

- ``contact``: a dry contact's debounce and raise/clear delays;
- ``threshold``: thresholds with hysteresis and delays, bits, enumerated values, and the
  telemetry gate (period, deadband);
- ``measured``: every point of a Modbus or SNMP device, evaluators built from its profile;
- ``comm``: the communication-failure alarm of a device that stopped answering;
- ``traps``, ``syslog``: what an SNMP notification or a syslog message means;
- ``served``: the points a device does not serve (unknown), and its ``profile_mismatch``;
- ``expiry``: alarms heard (traps, syslog) that clear by themselves after ``expire_s``;
- ``identities``: which alarms a profile can raise.
"""

from agent.evaluation.comm import CommEvaluator
from agent.evaluation.contact import ContactEvaluator
from agent.evaluation.expiry import Expiries
from agent.evaluation.identities import alarm_identities, raises
from agent.evaluation.measured import Evaluated, MeasuredEvaluation
from agent.evaluation.served import ServedEvaluator, unserved
from agent.evaluation.syslog import SyslogEvaluator
from agent.evaluation.threshold import (
    BitEvaluator,
    EqualsEvaluator,
    TelemetryGate,
    ThresholdEvaluator,
)
from agent.evaluation.traps import TrapEvaluator, TrapSource, Unmapped, match_trap

__all__ = [
    "BitEvaluator",
    "CommEvaluator",
    "ContactEvaluator",
    "EqualsEvaluator",
    "Evaluated",
    "Expiries",
    "MeasuredEvaluation",
    "ServedEvaluator",
    "SyslogEvaluator",
    "TelemetryGate",
    "ThresholdEvaluator",
    "TrapEvaluator",
    "TrapSource",
    "Unmapped",
    "alarm_identities",
    "match_trap",
    "raises",
    "unserved",
]
