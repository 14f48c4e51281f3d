"""Enrolment on the broker (mosquitto's dynamic-security plugin): collector instances, agents,
their ack keys and site-file skeletons."""

from collector.enrolment.errors import AlreadyEnrolled, EnrolmentError, NotEnrolled, ReservedId
from collector.enrolment.service import (
    ACK_KEY_FILE,
    ACK_SECRET_FILE,
    ADMIN_PASSWORD_FILE,
    PASSWORD_FILE,
    SITE_FILE,
    BrokerAccess,
    Enrolment,
    collector_password_file,
    enrol_agent,
    enrol_collector,
)
from collector.enrolment.skeleton import SiteSkeleton

__all__ = [
    "ACK_KEY_FILE",
    "ACK_SECRET_FILE",
    "ADMIN_PASSWORD_FILE",
    "PASSWORD_FILE",
    "SITE_FILE",
    "AlreadyEnrolled",
    "BrokerAccess",
    "Enrolment",
    "EnrolmentError",
    "NotEnrolled",
    "ReservedId",
    "SiteSkeleton",
    "collector_password_file",
    "enrol_agent",
    "enrol_collector",
]
