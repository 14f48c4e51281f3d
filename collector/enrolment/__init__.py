"""Enrolment of agents (and of the collector) on the broker: credentials, ACL, site skeleton."""

from collector.enrolment.errors import AlreadyEnrolled, EnrolmentError, NotEnrolled
from collector.enrolment.service import BrokerFiles, Enrolment, enrol_agent, enrol_collector
from collector.enrolment.skeleton import SiteSkeleton

__all__ = [
    "AlreadyEnrolled",
    "BrokerFiles",
    "Enrolment",
    "EnrolmentError",
    "NotEnrolled",
    "SiteSkeleton",
    "enrol_agent",
    "enrol_collector",
]
