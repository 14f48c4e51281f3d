"""Talking to a running broker's dynamic-security plugin, as ``mosquitto_ctrl`` does.

The plugin keeps its state in memory and rewrites its JSON file itself, so once the broker
runs a change goes through its control topic: the admin publishes ``{"commands": [...]}`` on
``$CONTROL/dynamic-security/v1`` and reads ``{"responses": [...]}`` (one per command, in
order, with ``error`` when it failed) on ``.../response``. The change takes effect at once;
no restart, no reload.
"""

from __future__ import annotations

import json
import queue
import secrets
from types import TracebackType
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from collector.enrolment.dynsec import ADMIN_USER, CONTROL_RESPONSE_TOPIC, CONTROL_TOPIC
from collector.enrolment.errors import EnrolmentError

TIMEOUT_S = 10.0


class DynsecControl:
    """A connection as the enrolment admin; ``with DynsecControl(...) as ctl: ctl.run([...])``."""

    def __init__(
        self, host: str, port: int, *, password: str, timeout_s: float = TIMEOUT_S
    ) -> None:
        self._where = f"{host}:{port}"
        self._host, self._port = host, port
        self._timeout_s = timeout_s
        self._connack: queue.Queue[Any] = queue.Queue()
        self._subacks: queue.Queue[Any] = queue.Queue()
        self._responses: queue.Queue[bytes] = queue.Queue()
        # A client id of its own each time: two enrolments at once must not take over each
        # other's session (the admin's id is not bound, unlike agents' and collectors').
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"shelterwatch-enrol-{secrets.token_hex(6)}",
            protocol=mqtt.MQTTv5,
        )
        self._client.username_pw_set(ADMIN_USER, password)
        self._client.on_connect = lambda _c, _u, _f, rc, _p: self._connack.put(rc)
        self._client.on_subscribe = lambda _c, _u, _m, rcs, _p: self._subacks.put(rcs)
        self._client.on_message = lambda _c, _u, m: self._responses.put(bytes(m.payload))

    def __enter__(self) -> DynsecControl:
        try:
            self._client.connect(self._host, self._port, keepalive=30)
        except OSError as err:
            raise EnrolmentError(
                f"broker {self._where} unreachable ({err.strerror or err}): once its "
                "dynamic-security state exists the broker owns it, so enrolment goes "
                "through the running broker; start it, or give --admin-broker"
            ) from err
        self._client.loop_start()
        try:
            reason = self._wait(self._connack, "is it an MQTT broker?")
            if reason.is_failure:
                raise EnrolmentError(
                    f"broker {self._where} refused the enrolment admin ({reason}): "
                    "is the admin password the one enrol-collector wrote?"
                )
            self._client.subscribe(CONTROL_RESPONSE_TOPIC, qos=1)
            granted = self._wait(self._subacks, "it did not answer a SUBSCRIBE")
            if any(rc.is_failure for rc in granted):
                raise EnrolmentError(
                    f"broker {self._where} refused the control topic: "
                    "is the dynamic-security plugin loaded?"
                )
        except BaseException:
            self._close()
            raise
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self._close()

    def run(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send ``commands`` in one message; their responses, in order."""
        tag = secrets.token_hex(8)
        tagged = [{**c, "correlationData": f"{tag}-{i}"} for i, c in enumerate(commands)]
        self._client.publish(CONTROL_TOPIC, json.dumps({"commands": tagged}), qos=1)
        wanted = [c["correlationData"] for c in tagged]
        while True:
            body = self._wait(
                self._responses,
                "is the broker running with the dynamic-security plugin, i.e. does its "
                "mosquitto.conf include_dir the folder of shelterwatch.conf?",
            )
            try:
                responses = json.loads(body)["responses"]
            except (ValueError, KeyError, TypeError) as err:
                raise EnrolmentError(f"broker {self._where}: unreadable answer {body!r}") from err
            # Answers to another admin's commands go to the same topic: only ours count.
            if [r.get("correlationData") for r in responses] == wanted:
                return list(responses)

    def _wait(self, source: queue.Queue[Any], what: str) -> Any:
        try:
            return source.get(timeout=self._timeout_s)
        except queue.Empty:
            raise EnrolmentError(
                f"broker {self._where}: no answer within {self._timeout_s:.0f} s: {what}"
            ) from None

    def _close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
